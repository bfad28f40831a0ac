#include "common/bus/nats_bus.h"

#include <nats/nats.h>

#include <cstdlib>

namespace ferry::bus {
namespace {

Error nats_error(natsStatus s, const std::string& what) {
  ErrorCode code = ErrorCode::kUnavailable;
  if (s == NATS_TIMEOUT) code = ErrorCode::kTimeout;
  if (s == NATS_NOT_FOUND) code = ErrorCode::kNotFound;
  if (s == NATS_NOT_PERMITTED) code = ErrorCode::kPermissionDenied;
  std::string detail = natsStatus_GetText(s);
  const char* last = nats_GetLastError(nullptr);
  if (last && *last && detail != last) detail += std::string(" (") + last + ")";
  return Error(code, what + ": " + detail);
}

}  // namespace

Subscription::~Subscription() {
  if (sub_) {
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
  }
}

JsMessage::JsMessage(natsMsg* m) : msg_(m) {
  data_.assign(natsMsg_GetData(m), natsMsg_GetDataLength(m));
  subject_ = natsMsg_GetSubject(m);
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
    delivered_ = meta->NumDelivered;
    jsMsgMetaData_Destroy(meta);
  }
}
JsMessage::JsMessage(JsMessage&& o) noexcept
    : msg_(o.msg_),
      data_(std::move(o.data_)),
      subject_(std::move(o.subject_)),
      delivered_(o.delivered_) {
  o.msg_ = nullptr;
}
JsMessage::~JsMessage() {
  if (msg_) natsMsg_Destroy(msg_);
}
Status JsMessage::ack() {
  natsStatus s = natsMsg_AckSync(msg_, nullptr, nullptr);
  if (s != NATS_OK) return nats_error(s, "ack " + subject_);
  return {};
}
Status JsMessage::nak(std::chrono::milliseconds delay) {
  natsStatus s = delay.count() > 0 ? natsMsg_NakWithDelay(msg_, delay.count(), nullptr)
                                   : natsMsg_Nak(msg_, nullptr);
  if (s != NATS_OK) return nats_error(s, "nak " + subject_);
  return {};
}
Status JsMessage::in_progress() {
  natsStatus s = natsMsg_InProgress(msg_, nullptr);
  if (s != NATS_OK) return nats_error(s, "in-progress " + subject_);
  return {};
}

PullConsumer::~PullConsumer() {
  if (sub_) natsSubscription_Destroy(sub_);  // keep the durable: do not unsubscribe
}

Result<std::vector<JsMessage>> PullConsumer::fetch(int batch, std::chrono::milliseconds timeout) {
  natsMsgList list{};
  natsStatus s = natsSubscription_Fetch(&list, sub_, batch, timeout.count(), nullptr);
  std::vector<JsMessage> out;
  if (s == NATS_TIMEOUT) return out;
  if (s != NATS_OK) return nats_error(s, "fetch");
  for (int i = 0; i < list.Count; i++) {
    out.emplace_back(list.Msgs[i]);
    list.Msgs[i] = nullptr;
  }
  natsMsgList_Destroy(&list);
  return out;
}

KvBucket::~KvBucket() {
  if (kv_) kvStore_Destroy(kv_);
}

Result<std::optional<KvEntry>> KvBucket::get(const std::string& key) {
  kvEntry* e = nullptr;
  natsStatus s = kvStore_Get(&e, kv_, key.c_str());
  if (s == NATS_NOT_FOUND) return std::optional<KvEntry>();
  if (s != NATS_OK) return nats_error(s, "kv get " + name_ + "/" + key);
  KvEntry out;
  out.value.assign(static_cast<const char*>(kvEntry_Value(e)), kvEntry_ValueLen(e));
  out.revision = kvEntry_Revision(e);
  kvEntry_Destroy(e);
  return std::optional<KvEntry>(std::move(out));
}

Result<uint64_t> KvBucket::put(const std::string& key, const std::string& value) {
  uint64_t rev = 0;
  natsStatus s = kvStore_Put(&rev, kv_, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) return nats_error(s, "kv put " + name_ + "/" + key);
  return rev;
}

Result<uint64_t> KvBucket::update(const std::string& key, const std::string& value,
                                  uint64_t revision) {
  uint64_t rev = 0;
  natsStatus s = revision == 0 ? kvStore_Create(&rev, kv_, key.c_str(), value.data(),
                                                static_cast<int>(value.size()))
                               : kvStore_Update(&rev, kv_, key.c_str(), value.data(),
                                                static_cast<int>(value.size()), revision);
  if (s != NATS_OK) {
    Error e = nats_error(s, "kv update " + name_ + "/" + key);
    e.code = ErrorCode::kFailedPrecondition;  // wrong last revision is the expected failure
    return e;
  }
  return rev;
}

Status KvBucket::erase(const std::string& key) {
  natsStatus s = kvStore_Delete(kv_, key.c_str());
  if (s != NATS_OK) return nats_error(s, "kv delete " + name_ + "/" + key);
  return {};
}

Result<std::vector<std::string>> KvBucket::keys() {
  kvKeysList list{};
  natsStatus s = kvStore_Keys(&list, kv_, nullptr);
  std::vector<std::string> out;
  if (s == NATS_NOT_FOUND) return out;  // empty bucket
  if (s != NATS_OK) return nats_error(s, "kv keys " + name_);
  for (int i = 0; i < list.Count; i++) out.emplace_back(list.Keys[i]);
  kvKeysList_Destroy(&list);
  return out;
}

void options_from_env(ConnectOptions& o) {
  auto set = [](const char* var, std::string& dst) {
    if (const char* v = std::getenv(var)) dst = v;
  };
  set("FERRY_NATS_URL", o.url);
  set("FERRY_NATS_USER", o.user);
  set("FERRY_NATS_PASSWORD", o.password);
  set("FERRY_NATS_CA", o.tls_ca_file);
  set("FERRY_NATS_CERT", o.tls_cert_file);
  set("FERRY_NATS_KEY", o.tls_key_file);
}

Result<std::unique_ptr<CnatsBus>> CnatsBus::connect(const ConnectOptions& o) {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  if (s != NATS_OK) return nats_error(s, "nats options");
  natsOptions_SetURL(opts, o.url.c_str());
  if (!o.name.empty()) natsOptions_SetName(opts, o.name.c_str());
  if (!o.user.empty()) natsOptions_SetUserInfo(opts, o.user.c_str(), o.password.c_str());
  natsOptions_SetTimeout(opts, o.timeout.count());
  if (!o.inbox_prefix.empty()) natsOptions_SetCustomInboxPrefix(opts, o.inbox_prefix.c_str());
  if (!o.tls_ca_file.empty() || o.url.rfind("tls://", 0) == 0) {
    natsOptions_SetSecure(opts, true);
    if (!o.tls_ca_file.empty() &&
        (s = natsOptions_LoadCATrustedCertificates(opts, o.tls_ca_file.c_str())) != NATS_OK) {
      natsOptions_Destroy(opts);
      return nats_error(s, "NATS CA file " + o.tls_ca_file);
    }
    if (!o.tls_cert_file.empty() &&
        (s = natsOptions_LoadCertificatesChain(opts, o.tls_cert_file.c_str(),
                                               o.tls_key_file.c_str())) != NATS_OK) {
      natsOptions_Destroy(opts);
      return nats_error(s, "NATS client certificate " + o.tls_cert_file);
    }
  }
  natsOptions_SetMaxReconnect(opts, -1);  // daemons ride out a NATS restart
  natsOptions_SetReconnectWait(opts, 250);
  std::unique_ptr<CnatsBus> bus(new CnatsBus);
  s = natsConnection_Connect(&bus->nc_, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) return nats_error(s, "connect to NATS at " + o.url);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 10000;
  s = natsConnection_JetStream(&bus->js_, bus->nc_, &jo);
  if (s != NATS_OK) return nats_error(s, "JetStream context");
  return bus;
}

CnatsBus::~CnatsBus() {
  if (js_) jsCtx_Destroy(js_);
  if (nc_) {
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
  }
}

bool CnatsBus::connected() const {
  return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

Status CnatsBus::publish(const std::string& subject, const std::string& data) {
  natsStatus s =
      natsConnection_Publish(nc_, subject.c_str(), data.data(), static_cast<int>(data.size()));
  if (s != NATS_OK) return nats_error(s, "publish " + subject);
  return {};
}

Result<std::string> CnatsBus::request(const std::string& subject, const std::string& data,
                                      std::chrono::milliseconds timeout) {
  natsMsg* reply = nullptr;
  natsStatus s = natsConnection_Request(&reply, nc_, subject.c_str(), data.data(),
                                        static_cast<int>(data.size()), timeout.count());
  if (s == NATS_NO_RESPONDERS) return Error(ErrorCode::kUnavailable, "no responder on " + subject);
  if (s != NATS_OK) return nats_error(s, "request " + subject);
  std::string out(natsMsg_GetData(reply), natsMsg_GetDataLength(reply));
  natsMsg_Destroy(reply);
  return out;
}

Result<std::unique_ptr<Subscription>> CnatsBus::subscribe(const std::string& subject,
                                                          std::function<void(Message)> cb) {
  std::unique_ptr<Subscription> sub(new Subscription);
  sub->cb_ = std::move(cb);
  natsStatus s = natsConnection_Subscribe(
      &sub->sub_, nc_, subject.c_str(),
      [](natsConnection*, natsSubscription*, natsMsg* m, void* closure) noexcept {
        Message msg;
        msg.subject = natsMsg_GetSubject(m);
        if (natsMsg_GetReply(m)) msg.reply = natsMsg_GetReply(m);
        msg.data.assign(natsMsg_GetData(m), natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
        static_cast<Subscription*>(closure)->cb_(std::move(msg));
      },
      sub.get());
  if (s != NATS_OK) return nats_error(s, "subscribe " + subject);
  return sub;
}

Status CnatsBus::ensure_stream(const std::string& name, const std::vector<std::string>& subjects,
                               bool work_queue, int replicas, std::chrono::seconds max_age) {
  jsStreamInfo* si = nullptr;
  natsStatus s = js_GetStreamInfo(&si, js_, name.c_str(), nullptr, nullptr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    return {};
  }
  std::vector<const char*> subs;
  for (const auto& x : subjects) subs.push_back(x.c_str());
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  cfg.Subjects = subs.data();
  cfg.SubjectsLen = static_cast<int>(subs.size());
  cfg.Storage = js_FileStorage;
  cfg.Retention = work_queue ? js_WorkQueuePolicy : js_LimitsPolicy;
  cfg.Replicas = replicas;
  cfg.MaxAge = std::chrono::duration_cast<std::chrono::nanoseconds>(max_age).count();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  s = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
  if (s != NATS_OK) return nats_error(s, "create stream " + name);
  jsStreamInfo_Destroy(si);
  return {};
}

Result<bool> CnatsBus::stream_exists(const std::string& name) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_, name.c_str(), nullptr, &jerr);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(si);
    return true;
  }
  if (s == NATS_NOT_FOUND) return false;
  return nats_error(s, "stream info " + name);
}

Status CnatsBus::js_publish(const std::string& subject, const std::string& data,
                            const std::string& msg_id) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  if (!msg_id.empty()) po.MsgId = msg_id.c_str();
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_Publish(&ack, js_, subject.c_str(), data.data(), static_cast<int>(data.size()),
                            &po, &jerr);
  if (s != NATS_OK) return nats_error(s, "JetStream publish " + subject);
  jsPubAck_Destroy(ack);
  return {};
}

Result<std::unique_ptr<PullConsumer>> CnatsBus::pull_consumer(const std::string& stream,
                                                              const std::string& filter_subject,
                                                              const std::string& durable,
                                                              std::chrono::seconds ack_wait) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Config.AckWait = std::chrono::duration_cast<std::chrono::nanoseconds>(ack_wait).count();
  so.Config.MaxAckPending = 1000;
  std::unique_ptr<PullConsumer> pc(new PullConsumer);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_PullSubscribe(&pc->sub_, js_, filter_subject.c_str(), durable.c_str(), nullptr,
                                  &so, &jerr);
  if (s != NATS_OK) return nats_error(s, "pull consumer " + durable + " on " + stream);
  return pc;
}

Result<std::unique_ptr<KvBucket>> CnatsBus::kv(const std::string& bucket, bool create_if_missing,
                                               int replicas, std::chrono::seconds ttl) {
  std::unique_ptr<KvBucket> b(new KvBucket);
  b->name_ = bucket;
  natsStatus s = js_KeyValue(&b->kv_, js_, bucket.c_str());
  if (s == NATS_NOT_FOUND && create_if_missing) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = bucket.c_str();
    cfg.History = 1;
    cfg.StorageType = js_FileStorage;
    cfg.Replicas = replicas;
    cfg.TTL = std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count();  // MaxAge
    s = js_CreateKeyValue(&b->kv_, js_, &cfg);
  }
  if (s != NATS_OK) return nats_error(s, "key-value bucket " + bucket);
  return b;
}

}  // namespace ferry::bus
