/* Peer for the XTS benchmark: what a careful C user of OpenSSL does for a disk. One EVP context is reused;
 * for every 512-byte sector the IV (the sector number, 128-bit little-endian) is set and one update made.
 * Runs over a 256 KiB buffer for argv[1] seconds and prints GB/s. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  const double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  enum { SECTOR = 512, BYTES = 256 * 1024 };
  static unsigned char buf[BYTES];
  unsigned char key[64], iv[16] = {0};
  for (int i = 0; i < 64; i++) key[i] = (unsigned char)(i * 37 + 11);
  for (int i = 0; i < BYTES; i++) buf[i] = (unsigned char)i;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx == NULL || EVP_EncryptInit_ex(ctx, EVP_aes_256_xts(), NULL, key, iv) != 1) return 1;
  uint64_t sector = 0, bytes = 0;
  const double start = now();
  double elapsed = 0;
  do {
    for (int off = 0; off < BYTES; off += SECTOR, sector++) {
      memcpy(iv, &sector, sizeof(sector));
      int len = 0;
      if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1) return 1;
      if (EVP_EncryptUpdate(ctx, buf + off, &len, buf + off, SECTOR) != 1 || len != SECTOR) return 1;
    }
    bytes += BYTES;
    elapsed = now() - start;
  } while (elapsed < seconds);
  printf("%.4f\n", bytes / elapsed / 1e9);
  EVP_CIPHER_CTX_free(ctx);
  return 0;
}
