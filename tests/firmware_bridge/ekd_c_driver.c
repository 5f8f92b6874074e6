/* Test driver for firmware_bridge/firmware/ekd_frame.c: one request per stdin line, one hex
 * answer per stdout line (see tests/firmware_bridge/test_c_encoder.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ekd_frame.h"

static void hex(const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) printf("%02x", p[i]);
}

static size_t unhex(const char *s, uint8_t *out, size_t cap) {
    size_t n = 0;
    unsigned int byte;
    while (s[0] && s[1] && n < cap && sscanf(s, "%2x", &byte) == 1) {
        out[n++] = (uint8_t)byte;
        s += 2;
    }
    return n;
}

int main(void) {
    char line[8192];
    static uint8_t frame[EKD_MAX_FRAME], wire[EKD_MAX_SERIAL], raw[EKD_MAX_SERIAL];
    while (fgets(line, sizeof line, stdin)) {
        char kind[16];
        size_t n = 0, w;
        if (sscanf(line, "%15s", kind) != 1) continue;
        if (strcmp(kind, "data") == 0) {
            unsigned flags, seq, fmt, range, count, i;
            unsigned long t0;
            uint32_t samples[255];
            char *p = line + 4;
            int used;
            if (sscanf(p, "%u %u %lu %u %u %u%n", &flags, &seq, &t0, &fmt, &range, &count, &used) != 6) return 2;
            p += used;
            for (i = 0; i < count; ++i) {
                unsigned long v = strtoul(p, &p, 10);
                samples[i] = (uint32_t)v;
            }
            n = ekd_data_frame((uint8_t)flags, (uint16_t)seq, (uint32_t)t0, (uint8_t)fmt, (uint8_t)range, samples,
                               (uint8_t)count, frame, sizeof frame);
        } else if (strcmp(kind, "hello") == 0) {
            unsigned seq, fw, bits, cal;
            unsigned long us, rate;
            float gain, offset;
            char name[64] = "";
            ekd_hello_t h;
            if (sscanf(line + 5, "%u %lu %u %lu %u %u %f %f %63s", &seq, &us, &fw, &rate, &bits, &cal, &gain, &offset,
                       name) < 8) return 2;
            h.firmware_version = (uint16_t)fw;
            h.rate_mhz = (uint32_t)rate;
            h.adc_bits = (uint8_t)bits;
            h.calibration = (uint8_t)cal;
            h.gain = gain;
            h.offset = offset;
            h.name = name;
            n = ekd_hello_frame((uint16_t)seq, (uint32_t)us, &h, frame, sizeof frame);
        } else if (strcmp(kind, "status") == 0) {
            unsigned seq, mv, flags;
            unsigned long us;
            if (sscanf(line + 6, "%u %lu %u %u", &seq, &us, &mv, &flags) != 4) return 2;
            n = ekd_status_frame((uint16_t)seq, (uint32_t)us, (uint16_t)mv, (uint8_t)flags, frame, sizeof frame);
        } else if (strcmp(kind, "ack") == 0) {
            unsigned seq, op, status;
            unsigned long us;
            if (sscanf(line + 3, "%u %lu %u %u", &seq, &us, &op, &status) != 4) return 2;
            n = ekd_ack_frame((uint16_t)seq, (uint32_t)us, (uint8_t)op, (uint8_t)status, frame, sizeof frame);
        } else if (strcmp(kind, "cmd") == 0) {
            ekd_command_t cmd;
            size_t len = unhex(line + 4, raw, sizeof raw);
            if (ekd_parse_command(raw, len, &cmd)) {
                printf("%u %u %llu\n", cmd.opcode, cmd.seq, (unsigned long long)cmd.argument);
            } else {
                printf("invalid\n");
            }
            fflush(stdout);
            continue;
        } else if (strcmp(kind, "cobsdec") == 0) {
            size_t len = unhex(line + 8, raw, sizeof raw);
            size_t out = ekd_cobs_decode(raw, len, frame, sizeof frame);
            if (out == 0 && len != 1) printf("error\n"); else { hex(frame, out); printf("\n"); }
            fflush(stdout);
            continue;
        } else {
            return 2;
        }
        if (n == 0) {
            printf("refused\n");
        } else {
            w = ekd_to_serial(frame, n, wire, sizeof wire);
            hex(frame, n);
            printf(" ");
            hex(wire, w);
            printf("\n");
        }
        fflush(stdout);
    }
    return 0;
}
