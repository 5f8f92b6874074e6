/*
 * ekd_frame: the EKD v1 wire protocol for GSR device firmware (C99, no allocation, no libc I/O).
 *
 * Frame (little-endian): ver_type | flags | seq u16 | t0 u32 | n | fmt | payload | crc u16
 * CRC-16/CCITT-FALSE over every byte before it. Serial: COBS + one 0x00 delimiter per frame.
 * BLE: one raw frame per notification. Specification and test vectors: PROTOCOL.md.
 *
 * Typical device loop (serial):
 *   uint8_t frame[EKD_MAX_FRAME], wire[EKD_MAX_SERIAL];
 *   size_t n = ekd_data_frame(flags, seq++, t0, EKD_FMT_U16_ADC, 0, samples, count, frame, sizeof frame);
 *   size_t w = ekd_to_serial(frame, n, wire, sizeof wire);
 *   Serial.write(wire, w);  t0 += count;
 */
#ifndef EKD_FRAME_H
#define EKD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EKD_VERSION 1u
#define EKD_HEADER_SIZE 10u
#define EKD_CRC_SIZE 2u
#define EKD_MAX_FRAME (EKD_HEADER_SIZE + 255u * 4u + EKD_CRC_SIZE)
/* COBS adds one byte per 254 plus one; the serial form adds the 0x00 delimiter */
#define EKD_MAX_SERIAL (EKD_MAX_FRAME + EKD_MAX_FRAME / 254u + 2u)
#define EKD_HELLO_SIZE 32u

/* frame types (low nibble of ver_type) */
enum { EKD_DATA = 0, EKD_STATUS = 1, EKD_HELLO = 2, EKD_CMD = 3, EKD_ACK = 4 };
/* DATA sample formats (low nibble of fmt) */
enum { EKD_FMT_U16_ADC = 0, EKD_FMT_U24_ADC = 1, EKD_FMT_U32_NS = 2 };
/* flags */
enum {
    EKD_FLAG_SATURATED = 0x01,
    EKD_FLAG_ELECTRODE_OFF = 0x02,
    EKD_FLAG_SETTLING = 0x04,
    EKD_FLAG_CLOCK_RESYNC = 0x08,
    EKD_FLAG_DEVICE_OVERFLOW = 0x10
};
/* command opcodes (host -> device) */
enum { EKD_OP_START = 0x01, EKD_OP_STOP = 0x02, EKD_OP_HELLO = 0x03, EKD_OP_SET_RATE = 0x04, EKD_OP_TIMESYNC = 0x05 };
/* calibration kinds in HELLO */
enum { EKD_CAL_NANOSIEMENS = 0, EKD_CAL_LINEAR = 1 };

typedef struct {
    uint16_t firmware_version; /* e.g. 0x0102 */
    uint32_t rate_mhz;         /* sampling rate in millihertz */
    uint8_t adc_bits;
    uint8_t calibration;       /* EKD_CAL_* */
    float gain;                /* uS = gain * adc + offset */
    float offset;
    const char *name;          /* up to 16 UTF-8 bytes, longer names are cut */
} ekd_hello_t;

typedef struct {
    uint8_t opcode;
    uint16_t seq;      /* echo it in the ACK */
    uint64_t argument; /* SET_RATE: mHz, TIMESYNC: host us, else 0 */
} ekd_command_t;

/* CRC-16/CCITT-FALSE: start with crc = 0xFFFF; ekd_crc16(data, len) does that for you. */
uint16_t ekd_crc16_update(uint16_t crc, const uint8_t *data, size_t len);
uint16_t ekd_crc16(const uint8_t *data, size_t len);

/* COBS: returns the encoded length (no delimiter); out needs len + len/254 + 1 bytes. */
size_t ekd_cobs_encode(const uint8_t *in, size_t len, uint8_t *out);
/* COBS decode of one frame without its delimiter; returns the decoded length, 0 on error. */
size_t ekd_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);

/* Any frame from its fields; returns the frame length, 0 if it does not fit or is inconsistent. */
size_t ekd_encode_frame(uint8_t type, uint8_t flags, uint16_t seq, uint32_t t0, uint8_t n, uint8_t fmt,
                        const uint8_t *payload, size_t payload_len, uint8_t *out, size_t out_cap);

/* DATA frame from integer samples (u16/u24 raw ADC or u32 nanosiemens); gain_range = fmt high nibble. */
size_t ekd_data_frame(uint8_t flags, uint16_t seq, uint32_t t0, uint8_t sample_format, uint8_t gain_range,
                      const uint32_t *samples, uint8_t count, uint8_t *out, size_t out_cap);

/* Control frames; t0 = device clock in microseconds. */
size_t ekd_hello_frame(uint16_t seq, uint32_t device_us, const ekd_hello_t *hello, uint8_t *out, size_t out_cap);
size_t ekd_status_frame(uint16_t seq, uint32_t device_us, uint16_t battery_mv, uint8_t flags, uint8_t *out,
                        size_t out_cap);
size_t ekd_ack_frame(uint16_t cmd_seq, uint32_t device_us, uint8_t opcode, uint8_t status, uint8_t *out,
                     size_t out_cap);

/* Serial form (COBS + 0x00) of a frame; returns its length, 0 if out_cap is too small. */
size_t ekd_to_serial(const uint8_t *frame, size_t len, uint8_t *out, size_t out_cap);

/* Parse a raw CMD frame (BLE write, or COBS-decoded serial chunk); returns 1 on success, 0 if the
 * frame is not a valid EKD v1 CMD frame. */
int ekd_parse_command(const uint8_t *frame, size_t len, ekd_command_t *cmd);

#ifdef __cplusplus
}
#endif

#endif /* EKD_FRAME_H */
