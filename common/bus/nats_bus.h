#pragma once
// CnatsBus: Ferry's view of NATS (core pub/sub, request/reply, JetStream streams,
// pull consumers and key-value buckets) over the cnats C client.
//
// Threads: every method may be called from any thread (cnats is thread-safe).
// Subscription callbacks run on cnats's own threads: they get a copied Message
// and must post to their owner's loop rather than touch domain state.
//
// We do not attach cnats to libuv with its adapter: the adapter only moves socket
// I/O onto the loop, message callbacks would still arrive on cnats threads, and
// synchronous calls (KV get/put, JetStream publish acks) would deadlock if made
// from the loop thread that must also service the socket.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/base/result.h"

typedef struct __natsConnection natsConnection;
typedef struct __natsSubscription natsSubscription;
typedef struct __natsMsg natsMsg;
typedef struct __jsCtx jsCtx;
typedef struct __kvStore kvStore;

namespace ferry::bus {

struct Message {
  std::string subject;
  std::string reply;
  std::string data;
};

struct ConnectOptions {
  std::string url = "nats://127.0.0.1:4222";
  std::string name;
  std::string user;
  std::string password;
  std::chrono::milliseconds timeout{5000};
  std::string inbox_prefix;  // "" = _INBOX; agents use their own so they can be limited to it
  // TLS: verify the server against this CA (PEM); present a client certificate if given.
  std::string tls_ca_file, tls_cert_file, tls_key_file;
};

// Fills url, user, password and TLS files from FERRY_NATS_URL, FERRY_NATS_USER,
// FERRY_NATS_PASSWORD, FERRY_NATS_CA, FERRY_NATS_CERT, FERRY_NATS_KEY where set.
void options_from_env(ConnectOptions& o);

class Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

 private:
  friend class CnatsBus;
  Subscription() = default;
  natsSubscription* sub_ = nullptr;
  std::function<void(Message)> cb_;
};

// A message pulled from a JetStream consumer; ack()/nak() must be called once.
class JsMessage {
 public:
  explicit JsMessage(natsMsg* m);
  ~JsMessage();
  JsMessage(JsMessage&&) noexcept;
  JsMessage(const JsMessage&) = delete;
  const std::string& data() const { return data_; }
  const std::string& subject() const { return subject_; }
  uint64_t delivered() const { return delivered_; }
  Status ack();
  Status nak(std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  Status in_progress();

 private:
  natsMsg* msg_;
  std::string data_;
  std::string subject_;
  uint64_t delivered_ = 0;
};

class PullConsumer {
 public:
  ~PullConsumer();
  // Waits up to timeout for at most batch messages; an empty vector on timeout.
  Result<std::vector<JsMessage>> fetch(int batch, std::chrono::milliseconds timeout);

 private:
  friend class CnatsBus;
  natsSubscription* sub_ = nullptr;
};

struct KvEntry {
  std::string value;
  uint64_t revision = 0;
};

class KvBucket {
 public:
  ~KvBucket();
  Result<std::optional<KvEntry>> get(const std::string& key);
  Result<uint64_t> put(const std::string& key, const std::string& value);
  // Writes only if the key's revision is still `revision` (0: key must not exist).
  Result<uint64_t> update(const std::string& key, const std::string& value, uint64_t revision);
  Status erase(const std::string& key);
  Result<std::vector<std::string>> keys();

 private:
  friend class CnatsBus;
  kvStore* kv_ = nullptr;
  std::string name_;
};

class CnatsBus {
 public:
  static Result<std::unique_ptr<CnatsBus>> connect(const ConnectOptions& opts);
  ~CnatsBus();

  Status publish(const std::string& subject, const std::string& data);
  Status respond(const std::string& reply, const std::string& data) { return publish(reply, data); }
  Result<std::string> request(const std::string& subject, const std::string& data,
                              std::chrono::milliseconds timeout);
  Result<std::unique_ptr<Subscription>> subscribe(const std::string& subject,
                                                  std::function<void(Message)> cb);

  // Creates the stream if missing (file storage). work_queue: each message is
  // removed once acked. max_age > 0: messages older than that are dropped.
  Status ensure_stream(const std::string& name, const std::vector<std::string>& subjects,
                       bool work_queue, int replicas = 1,
                       std::chrono::seconds max_age = std::chrono::seconds(0));
  Result<bool> stream_exists(const std::string& name);
  // Publishes and waits for the stream's ack. msg_id dedupes within the window.
  Status js_publish(const std::string& subject, const std::string& data,
                    const std::string& msg_id = "");
  // A durable pull consumer on filter_subject in stream.
  Result<std::unique_ptr<PullConsumer>> pull_consumer(const std::string& stream,
                                                      const std::string& filter_subject,
                                                      const std::string& durable,
                                                      std::chrono::seconds ack_wait);
  // ttl > 0 (at creation): entries expire that long after their last write.
  Result<std::unique_ptr<KvBucket>> kv(const std::string& bucket, bool create_if_missing = true,
                                       int replicas = 1,
                                       std::chrono::seconds ttl = std::chrono::seconds(0));
  bool connected() const;

 private:
  CnatsBus() = default;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

}  // namespace ferry::bus
