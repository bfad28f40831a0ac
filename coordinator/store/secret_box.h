#pragma once
// SecretBox: what keeps Secrets' values unreadable in NATS (local mode).
// A Secret's `data` and `stringData` are sealed with AES-256-GCM under a key
// that only the coordinator holds (a 0600 file, never sent anywhere); the
// stored document keeps its apiVersion, kind and metadata in clear, and
// `ferrySealed`: base64(nonce 12 | ciphertext | tag 16) of the JSON object
// {"data": ..., "stringData": ...}. The metadata is authenticated too (as
// associated data), so a sealed value cannot be moved to another Secret.
//
// Every coordinator that shares a NATS must use the same key file (a
// standby, a restarted one). Thread-safe (immutable after open).
#include <array>
#include <string>

#include "common/base/result.h"
#include "common/model/resource.h"

namespace ferry::coordinator::store {

class SecretBox {
 public:
  // Reads the key from `path`, or makes one (random, 0600) if the file does
  // not exist. Errors name the file.
  static Result<SecretBox> open(const std::string& path);
  // The document to store: values sealed. A document without values is kept.
  Result<model::Json> seal(const model::Json& secret) const;
  // The document as applied. A document that was never sealed is returned
  // as it is (`*was_sealed` false): stored by an older coordinator.
  Result<model::Json> unseal(const model::Json& stored, bool* was_sealed = nullptr) const;
  const std::string& path() const { return path_; }

 private:
  std::array<unsigned char, 32> key_{};
  std::string path_;
};

}  // namespace ferry::coordinator::store
