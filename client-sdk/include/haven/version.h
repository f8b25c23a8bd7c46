/* Haven client SDK: version constants. C and C++.
 *
 * The public SDK API (a C++ client object and the C ABI in haven.h) is built
 * on top of these; no Asio, protobuf or libsodium type ever appears in a
 * header under include/haven/. */
#ifndef HAVEN_VERSION_H_
#define HAVEN_VERSION_H_

#define HAVEN_VERSION_MAJOR 0
#define HAVEN_VERSION_MINOR 1
#define HAVEN_VERSION_PATCH 0

/* The transport protocol this SDK speaks: the Noise prologue (docs/protocol.md). */
#define HAVEN_PROTOCOL_PROLOGUE "haven/1"
#define HAVEN_NOISE_PROTOCOL "Noise_XK_25519_ChaChaPoly_BLAKE2b"

#endif /* HAVEN_VERSION_H_ */
