// ESP32 GSR sensor speaking EKD v1 over USB serial and BLE at the same time.
//
// Build: Arduino IDE or arduino-cli with the ESP32 core and the NimBLE-Arduino library.
// Copy ../../ekd_frame.h and ../../ekd_frame.c next to this file (Arduino compiles the .c too).
// Hardware: a GSR front end (e.g. Grove GSR or a constant-voltage divider) on GSR_PIN; calibrate
// GAIN_US / OFFSET_US so that uS = GAIN_US * adc + OFFSET_US for your circuit.
//
// Host: emotionkd-sdk stream "serial:///dev/ttyUSB0?protocol=ekd"
//       emotionkd-sdk stream "ble://EKD-GSR-01?protocol=ekd"

#include <Arduino.h>
#include <NimBLEDevice.h>

extern "C" {
#include "ekd_frame.h"
}

static const int GSR_PIN = 34;              // ADC1 channel (works while BLE is on)
static const uint32_t RATE_MHZ = 128000;    // 128 Hz
static const float GAIN_US = 0.005f;        // uS per ADC count: calibrate for your front end
static const float OFFSET_US = 0.0f;
static const uint8_t ADC_BITS = 12;
static const char *DEVICE_NAME = "EKD-GSR-01";
static const uint32_t FLUSH_US = 250000;    // flush at least every 250 ms (PROTOCOL.md)

static const char *SERVICE_UUID = "049649f8-6032-41a8-8c68-803ad9b53d29";
static const char *DATA_UUID = "049649f9-6032-41a8-8c68-803ad9b53d29";
static const char *CONTROL_UUID = "049649fa-6032-41a8-8c68-803ad9b53d29";

static NimBLECharacteristic *dataChar = nullptr;
static volatile bool bleConnected = false;
static volatile bool streaming = false;
static uint16_t seq = 0;                    // one counter for every frame we send
static uint32_t sampleIndex = 0;            // t0 of the next sample since START

static uint32_t pending[64];                // samples not yet sent
static uint8_t pendingCount = 0;
static uint32_t pendingT0 = 0;
static uint32_t lastFlushUs = 0;
static uint32_t nextSampleUs = 0;

static uint8_t frameBuf[EKD_MAX_FRAME];
static uint8_t wireBuf[EKD_MAX_SERIAL];
static uint8_t rxBuf[64];
static size_t rxLen = 0;

// BLE frames must fit one notification: (MTU - 3 - 12 bytes of header and CRC) / 2 bytes each.
static uint8_t bleSamplesPerFrame() {
  uint16_t mtu = NimBLEDevice::getMTU();
  int room = (int)mtu - 3 - (int)(EKD_HEADER_SIZE + EKD_CRC_SIZE);
  int n = room / 2;
  if (n < 1) n = 1;
  if (n > 64) n = 64;
  return (uint8_t)n;
}

static void sendFrame(const uint8_t *frame, size_t len) {
  size_t w = ekd_to_serial(frame, len, wireBuf, sizeof wireBuf);
  if (w) Serial.write(wireBuf, w);
  if (bleConnected && dataChar) {
    dataChar->setValue(frame, len);
    dataChar->notify();
  }
}

static void sendHello() {
  ekd_hello_t hello = {0x0100, RATE_MHZ, ADC_BITS, EKD_CAL_LINEAR, GAIN_US, OFFSET_US, DEVICE_NAME};
  size_t n = ekd_hello_frame(seq++, micros(), &hello, frameBuf, sizeof frameBuf);
  sendFrame(frameBuf, n);
}

static void handleCommand(const uint8_t *frame, size_t len) {
  ekd_command_t cmd;
  if (!ekd_parse_command(frame, len, &cmd)) return;
  uint8_t status = 0;
  switch (cmd.opcode) {
    case EKD_OP_START:
      if (!streaming) { streaming = true; sampleIndex = 0; pendingCount = 0; nextSampleUs = micros(); }
      break;
    case EKD_OP_STOP: streaming = false; break;
    case EKD_OP_HELLO: break;
    case EKD_OP_TIMESYNC: break;
    default: status = 1; break;   // SET_RATE is not supported by this sketch
  }
  size_t n = ekd_ack_frame(cmd.seq, micros(), cmd.opcode, status, frameBuf, sizeof frameBuf);
  sendFrame(frameBuf, n);
  if (cmd.opcode == EKD_OP_HELLO) sendHello();
}

class ControlCallbacks : public NimBLECharacteristicCallbacks {
  void onWrite(NimBLECharacteristic *c, NimBLEConnInfo &info) override {
    std::string v = c->getValue();
    handleCommand(reinterpret_cast<const uint8_t *>(v.data()), v.size());
  }
};

class ServerCallbacks : public NimBLEServerCallbacks {
  void onConnect(NimBLEServer *s, NimBLEConnInfo &info) override { bleConnected = true; }
  void onDisconnect(NimBLEServer *s, NimBLEConnInfo &info, int reason) override {
    bleConnected = false;
    NimBLEDevice::startAdvertising();
  }
};

static void flush() {
  if (pendingCount == 0) return;
  uint8_t perFrame = bleConnected ? bleSamplesPerFrame() : 64;
  uint8_t flags = 0;
  uint8_t done = 0;
  while (done < pendingCount) {
    uint8_t count = (uint8_t)min<int>(perFrame, pendingCount - done);
    flags = 0;
    for (uint8_t i = 0; i < count; ++i) {
      if (pending[done + i] >= (1u << ADC_BITS) - 1) flags |= EKD_FLAG_SATURATED;
    }
    size_t n = ekd_data_frame(flags, seq++, pendingT0 + done, EKD_FMT_U16_ADC, 0, pending + done, count,
                              frameBuf, sizeof frameBuf);
    sendFrame(frameBuf, n);
    done += count;
  }
  pendingCount = 0;
  lastFlushUs = micros();
}

static void pollSerialCommands() {
  while (Serial.available()) {
    int b = Serial.read();
    if (b < 0) break;
    if (b == 0) {                      // end of a COBS frame
      uint8_t decoded[64];
      size_t n = ekd_cobs_decode(rxBuf, rxLen, decoded, sizeof decoded);
      if (n) handleCommand(decoded, n);
      rxLen = 0;
    } else if (rxLen < sizeof rxBuf) {
      rxBuf[rxLen++] = (uint8_t)b;
    } else {
      rxLen = 0;                       // garbage: wait for the next delimiter
    }
  }
}

void setup() {
  Serial.begin(115200);
  analogReadResolution(ADC_BITS);
  NimBLEDevice::init(DEVICE_NAME);
  NimBLEDevice::setMTU(185);
  NimBLEServer *server = NimBLEDevice::createServer();
  server->setCallbacks(new ServerCallbacks());
  NimBLEService *service = server->createService(SERVICE_UUID);
  dataChar = service->createCharacteristic(DATA_UUID, NIMBLE_PROPERTY::NOTIFY);
  NimBLECharacteristic *control =
      service->createCharacteristic(CONTROL_UUID, NIMBLE_PROPERTY::WRITE | NIMBLE_PROPERTY::WRITE_NR);
  control->setCallbacks(new ControlCallbacks());
  service->start();
  NimBLEAdvertising *adv = NimBLEDevice::getAdvertising();
  adv->addServiceUUID(SERVICE_UUID);
  adv->setName(DEVICE_NAME);
  adv->start();
  sendHello();
}

void loop() {
  pollSerialCommands();
  if (!streaming) { delay(1); return; }
  uint32_t now = micros();
  if ((int32_t)(now - nextSampleUs) >= 0) {
    nextSampleUs += 1000000000UL / RATE_MHZ;
    if (pendingCount == 0) pendingT0 = sampleIndex;
    pending[pendingCount++] = (uint32_t)analogRead(GSR_PIN);
    sampleIndex++;
    if (pendingCount == sizeof pending / sizeof pending[0]) flush();
  }
  if (pendingCount && (uint32_t)(now - lastFlushUs) >= FLUSH_US) flush();
  static uint32_t lastStatus = 0;
  if ((uint32_t)(now - lastStatus) >= 1000000UL) {
    lastStatus = now;
    size_t n = ekd_status_frame(seq++, now, 3900, 0, frameBuf, sizeof frameBuf);  // wire a battery ADC here
    sendFrame(frameBuf, n);
  }
}
