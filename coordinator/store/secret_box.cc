#include "coordinator/store/secret_box.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace ferry::coordinator::store {

using model::Json;

namespace {

constexpr size_t kNonce = 12, kTag = 16;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

// Associated data: what the sealed values belong to.
std::string aad_of(const Json& doc) {
  const Json md = doc.value("metadata", Json::object());
  return doc.value("kind", "") + "/" + md.value("namespace", "") + "/" + md.value("name", "");
}

std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

}  // namespace

Result<SecretBox> SecretBox::open(const std::string& path) {
  SecretBox box;
  box.path_ = path;
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  // Made once, atomically: of two coordinators starting together, one writes
  // the key and both read it.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    unsigned char k[32];
    if (RAND_bytes(k, sizeof k) != 1) {
      ::close(fd);
      ::unlink(path.c_str());
      return Error(ErrorCode::kInternal, "secret key " + path + ": no random bytes");
    }
    std::string text = hex(k, sizeof k) + "\n";
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      ::unlink(path.c_str());
      return Error(ErrorCode::kIo, "secret key " + path + ": cannot write it");
    }
  } else if (errno != EEXIST) {
    return Error(ErrorCode::kIo, "secret key " + path + ": " + std::strerror(errno));
  }
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error(ErrorCode::kIo, "secret key " + path + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  char buf[128] = {};
  ssize_t n = 0;
  for (int tries = 0; tries < 50 && n < 64; tries++) {  // a peer may still be writing it
    n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n < 64) ::usleep(20000);
  }
  ::close(fd);
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    return Error(ErrorCode::kPermissionDenied,
                 "secret key " + path + ": readable by others (mode " + mode + "); chmod 600 it");
  }
  std::string text(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() != 64 || text.find_first_not_of("0123456789abcdef") != std::string::npos)
    return Error(ErrorCode::kInvalidArgument,
                 "secret key " + path + ": not 64 hex digits (a 256-bit key)");
  for (size_t i = 0; i < 32; i++)
    box.key_[i] = static_cast<unsigned char>(std::stoi(text.substr(2 * i, 2), nullptr, 16));
  return box;
}

Result<Json> SecretBox::seal(const Json& secret) const {
  Json values = Json::object();
  for (const char* f : {"data", "stringData"})
    if (secret.contains(f)) values[f] = secret[f];
  if (values.empty()) return secret;
  std::string plain = values.dump(), aad = aad_of(secret);
  unsigned char nonce[kNonce];
  if (RAND_bytes(nonce, sizeof nonce) != 1)
    return Error(ErrorCode::kInternal, "sealing a Secret: no random bytes");
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  std::string out(kNonce + plain.size() + kTag, '\0');
  std::memcpy(out.data(), nonce, kNonce);
  int len = 0, fin = 0;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o + kNonce, &len,
                        reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + kNonce + len, &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, o + kNonce + plain.size()) != 1)
    return Error(ErrorCode::kInternal, "sealing a Secret failed");
  Json stored = secret;
  stored.erase("data");
  stored.erase("stringData");
  stored["ferrySealed"] = model::base64_encode(out);
  return stored;
}

Result<Json> SecretBox::unseal(const Json& stored, bool* was_sealed) const {
  if (was_sealed) *was_sealed = stored.contains("ferrySealed");
  if (!stored.contains("ferrySealed")) return stored;
  const std::string what = "Secret " + aad_of(stored).substr(std::string("Secret/").size());
  bool ok = stored["ferrySealed"].is_string();
  std::string in = ok ? model::base64_decode(stored["ferrySealed"].get<std::string>(), &ok) : "";
  if (!ok || in.size() < kNonce + kTag)
    return Error(ErrorCode::kInvalidArgument, what + ": ferrySealed is not a sealed value");
  std::string aad = aad_of(stored);
  size_t n = in.size() - kNonce - kTag;
  std::string plain(n, '\0');
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  int len = 0, fin = 0;
  std::array<unsigned char, kTag> tag{};
  std::memcpy(tag.data(), p + kNonce + n, kTag);
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), p) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len, p + kNonce,
                        static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &fin) !=
          1)
    return Error(ErrorCode::kPermissionDenied, what + ": cannot be unsealed with the key in " +
                                                   path_ +
                                                   " (another key, or the value was changed)");
  Json values = Json::parse(plain, nullptr, false);
  if (!values.is_object())
    return Error(ErrorCode::kInvalidArgument, what + ": sealed value is not JSON");
  Json doc = stored;
  doc.erase("ferrySealed");
  for (auto it = values.begin(); it != values.end(); ++it) doc[it.key()] = it.value();
  return doc;
}

}  // namespace ferry::coordinator::store
