/* ekd_frame.c: see ekd_frame.h. C99, no allocation; works on 8-bit AVR up to ESP32. */
#include "ekd_frame.h"

#include <string.h>

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static void put_f32(uint8_t *p, float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits); /* IEEE-754 single on every supported MCU */
    put_u32(p, bits);
}

uint16_t ekd_crc16_update(uint16_t crc, const uint8_t *data, size_t len) {
    size_t i;
    int bit;
    for (i = 0; i < len; ++i) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (bit = 0; bit < 8; ++bit) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

uint16_t ekd_crc16(const uint8_t *data, size_t len) { return ekd_crc16_update(0xFFFFu, data, len); }

size_t ekd_cobs_encode(const uint8_t *in, size_t len, uint8_t *out) {
    size_t read = 0, write = 1, code_at = 0;
    uint8_t code = 1;
    while (read < len) {
        if (in[read] == 0) {
            out[code_at] = code;
            code_at = write++;
            code = 1;
        } else {
            out[write++] = in[read];
            if (++code == 0xFFu) {
                out[code_at] = code;
                code_at = write++;
                code = 1;
            }
        }
        ++read;
    }
    out[code_at] = code;
    return write;
}

size_t ekd_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap) {
    size_t read = 0, write = 0, i;
    while (read < len) {
        uint8_t code = in[read];
        if (code == 0 || read + code > len) return 0;
        ++read;
        for (i = 1; i < code; ++i) {
            if (in[read] == 0 || write >= out_cap) return 0;
            out[write++] = in[read++];
        }
        if (code < 0xFFu && read < len) {
            if (write >= out_cap) return 0;
            out[write++] = 0;
        }
    }
    return write;
}

static size_t sample_size(uint8_t fmt) {
    switch (fmt & 0x0Fu) {
        case EKD_FMT_U16_ADC: return 2;
        case EKD_FMT_U24_ADC: return 3;
        case EKD_FMT_U32_NS: return 4;
        default: return 0;
    }
}

size_t ekd_encode_frame(uint8_t type, uint8_t flags, uint16_t seq, uint32_t t0, uint8_t n, uint8_t fmt,
                        const uint8_t *payload, size_t payload_len, uint8_t *out, size_t out_cap) {
    size_t expected = (type == EKD_DATA) ? (size_t)n * sample_size(fmt) : (size_t)n;
    size_t total = EKD_HEADER_SIZE + payload_len + EKD_CRC_SIZE;
    uint16_t crc;
    if (type > EKD_ACK || expected != payload_len || total > out_cap) return 0;
    if (type == EKD_DATA && sample_size(fmt) == 0) return 0;
    out[0] = (uint8_t)((EKD_VERSION << 4) | type);
    out[1] = flags;
    put_u16(out + 2, seq);
    put_u32(out + 4, t0);
    out[8] = n;
    out[9] = fmt;
    if (payload_len) memmove(out + EKD_HEADER_SIZE, payload, payload_len);
    crc = ekd_crc16(out, EKD_HEADER_SIZE + payload_len);
    put_u16(out + EKD_HEADER_SIZE + payload_len, crc);
    return total;
}

size_t ekd_data_frame(uint8_t flags, uint16_t seq, uint32_t t0, uint8_t sample_format, uint8_t gain_range,
                      const uint32_t *samples, uint8_t count, uint8_t *out, size_t out_cap) {
    size_t size = sample_size(sample_format), i, k;
    uint8_t *p;
    uint16_t crc;
    size_t total = EKD_HEADER_SIZE + (size_t)count * size + EKD_CRC_SIZE;
    if (size == 0 || total > out_cap || gain_range > 0x0Fu) return 0;
    out[0] = (uint8_t)((EKD_VERSION << 4) | EKD_DATA);
    out[1] = flags;
    put_u16(out + 2, seq);
    put_u32(out + 4, t0);
    out[8] = count;
    out[9] = (uint8_t)((gain_range << 4) | (sample_format & 0x0Fu));
    p = out + EKD_HEADER_SIZE;
    for (i = 0; i < count; ++i) {
        for (k = 0; k < size; ++k) *p++ = (uint8_t)((samples[i] >> (8 * k)) & 0xFFu);
    }
    crc = ekd_crc16(out, total - EKD_CRC_SIZE);
    put_u16(out + total - EKD_CRC_SIZE, crc);
    return total;
}

size_t ekd_hello_frame(uint16_t seq, uint32_t device_us, const ekd_hello_t *hello, uint8_t *out, size_t out_cap) {
    uint8_t payload[EKD_HELLO_SIZE];
    size_t i;
    memset(payload, 0, sizeof payload);
    put_u16(payload, hello->firmware_version);
    put_u32(payload + 2, hello->rate_mhz);
    payload[6] = hello->adc_bits;
    payload[7] = hello->calibration;
    put_f32(payload + 8, hello->gain);
    put_f32(payload + 12, hello->offset);
    for (i = 0; hello->name != NULL && hello->name[i] != '\0' && i < 16; ++i) payload[16 + i] = (uint8_t)hello->name[i];
    return ekd_encode_frame(EKD_HELLO, 0, seq, device_us, EKD_HELLO_SIZE, 0, payload, sizeof payload, out, out_cap);
}

size_t ekd_status_frame(uint16_t seq, uint32_t device_us, uint16_t battery_mv, uint8_t flags, uint8_t *out,
                        size_t out_cap) {
    uint8_t payload[3];
    put_u16(payload, battery_mv);
    payload[2] = flags;
    return ekd_encode_frame(EKD_STATUS, flags, seq, device_us, 3, 0, payload, 3, out, out_cap);
}

size_t ekd_ack_frame(uint16_t cmd_seq, uint32_t device_us, uint8_t opcode, uint8_t status, uint8_t *out,
                     size_t out_cap) {
    uint8_t payload[2];
    payload[0] = opcode;
    payload[1] = status;
    return ekd_encode_frame(EKD_ACK, 0, cmd_seq, device_us, 2, 0, payload, 2, out, out_cap);
}

size_t ekd_to_serial(const uint8_t *frame, size_t len, uint8_t *out, size_t out_cap) {
    size_t encoded;
    if (len + len / 254u + 2u > out_cap) return 0;
    encoded = ekd_cobs_encode(frame, len, out);
    out[encoded] = 0;
    return encoded + 1;
}

int ekd_parse_command(const uint8_t *frame, size_t len, ekd_command_t *cmd) {
    uint16_t crc;
    size_t n, k;
    if (len < EKD_HEADER_SIZE + EKD_CRC_SIZE + 1) return 0;
    crc = (uint16_t)(frame[len - 2] | (frame[len - 1] << 8));
    if (ekd_crc16(frame, len - 2) != crc) return 0;
    if (frame[0] != ((EKD_VERSION << 4) | EKD_CMD)) return 0;
    n = frame[8];
    if (n == 0 || EKD_HEADER_SIZE + n + EKD_CRC_SIZE != len) return 0;
    cmd->opcode = frame[EKD_HEADER_SIZE];
    cmd->seq = (uint16_t)(frame[2] | (frame[3] << 8));
    cmd->argument = 0;
    for (k = n - 1; k > 0 && k <= 8; --k) cmd->argument = (cmd->argument << 8) | frame[EKD_HEADER_SIZE + k];
    return 1;
}
