#include "enrich/containers.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <nlohmann/json.hpp>

namespace tcpconnect {

namespace {

constexpr std::size_t kMaxBody = 1 << 20;  // an inspect answer is a few KiB

std::uint64_t mono_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000 +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

bool has_component(std::string_view path, std::string_view prefix) {
  for (std::size_t pos = 0; pos < path.size();) {
    const std::size_t end = std::min(path.find('/', pos), path.size());
    if (path.substr(pos, end - pos).starts_with(prefix)) return true;
    pos = end + 1;
  }
  return false;
}

std::string field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return cut_runtime_field(it->get_ref<const std::string&>());
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * n > kMaxBody) return 0;  // aborts the transfer
  body->append(data, size * n);
  return size * n;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

ContainerRuntime runtime_from_cgroup(std::string_view path) {
  if (has_component(path, "libpod")) return ContainerRuntime::Podman;
  if (has_component(path, "cri-containerd-")) return ContainerRuntime::Containerd;
  if (has_component(path, "crio-")) return ContainerRuntime::Crio;
  if (has_component(path, "docker")) return ContainerRuntime::Docker;
  return ContainerRuntime::Unknown;
}

RuntimeSocket parse_runtime_socket(std::string_view spec) {
  if (spec.starts_with("cri:")) return {std::string(spec.substr(4)), RuntimeSocket::Api::Cri};
  if (spec.starts_with("engine:")) return {std::string(spec.substr(7)), RuntimeSocket::Api::Engine};
  const std::string_view base = spec.substr(spec.rfind('/') + 1);
  const bool cri = base == "containerd.sock" || base == "crio.sock";
  return {std::string(spec), cri ? RuntimeSocket::Api::Cri : RuntimeSocket::Api::Engine};
}

std::optional<ContainerInfo> parse_inspect(std::string_view body) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("Id")) return std::nullopt;
  ContainerInfo info;
  info.name = field(j, "Name");
  if (info.name.starts_with('/')) info.name.erase(0, 1);
  auto config = j.find("Config");
  if (config != j.end() && config->is_object()) {
    info.image = field(*config, "Image");
    auto labels = config->find("Labels");
    if (labels != config->end() && labels->is_object()) {
      info.pod = field(*labels, "io.kubernetes.pod.name");
      info.pod_namespace = field(*labels, "io.kubernetes.pod.namespace");
      info.k8s_container = field(*labels, "io.kubernetes.container.name");
    }
  }
  return info;
}

ContainerNames::ContainerNames(ContainerNamesConfig cfg, Log log)
    : cfg_(std::move(cfg)), log_(std::move(log)) {
  curl_global_init(CURL_GLOBAL_NOTHING);
  using Api = RuntimeSocket::Api;
  auto add = [this](RuntimeSocket where, ContainerRuntime owner) {
    Socket s;
    s.where = std::move(where);
    s.owner = owner;
    if (s.where.api == Api::Cri) s.cri = std::make_shared<CriClient>(s.where.path);
    sockets_.push_back(std::move(s));
  };
  if (!cfg_.socket.empty()) {
    add(parse_runtime_socket(cfg_.socket), ContainerRuntime::Unknown);
  } else {
    add({"/var/run/docker.sock", Api::Engine}, ContainerRuntime::Docker);
    add({"/run/podman/podman.sock", Api::Engine}, ContainerRuntime::Podman);
    add({"/run/containerd/containerd.sock", Api::Cri}, ContainerRuntime::Containerd);
    add({"/run/crio/crio.sock", Api::Cri}, ContainerRuntime::Crio);
  }
}

ContainerNames::~ContainerNames() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

std::vector<std::size_t> ContainerNames::order_for(ContainerRuntime runtime) const {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < sockets_.size(); i++)
    if (sockets_[i].owner == runtime) order.push_back(i);
  for (std::size_t i = 0; i < sockets_.size(); i++)
    if (sockets_[i].owner != runtime) order.push_back(i);
  return order;
}

bool ContainerNames::any_reachable(std::uint64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  return std::any_of(sockets_.begin(), sockets_.end(),
                     [now_ns](const Socket& s) { return s.down_until <= now_ns; });
}

std::size_t ContainerNames::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.size();
}

ContainerNames::Answer ContainerNames::lookup(const std::string& id, ContainerRuntime runtime,
                                              std::uint64_t now_ns) {
  std::vector<std::string> messages;
  Answer answer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    messages.swap(messages_);
    auto it = cache_.find(id);
    if (it != cache_.end() && (!it->second.done || it->second.expires_ns > now_ns)) {
      answer.pending = !it->second.done;
      answer.info = it->second.info;
      answer.unreachable = it->second.unreachable;
    } else {
      const bool reachable =
          std::any_of(sockets_.begin(), sockets_.end(),
                      [now_ns](const Socket& s) { return s.down_until <= now_ns; });
      if (!reachable) {
        answer.unreachable = true;
      } else {
        if (cache_.size() >= cfg_.max_entries) {
          std::erase_if(cache_, [now_ns](const auto& kv) {
            return kv.second.done && kv.second.expires_ns <= now_ns;
          });
          // Still full of live answers: start over rather than grow.
          if (cache_.size() >= cfg_.max_entries)
            std::erase_if(cache_, [](const auto& kv) { return kv.second.done; });
        }
        // Full of questions not answered yet (a flood of new containers): this one is not
        // asked, and not waited for.
        if (cache_.size() >= cfg_.max_entries) {
          answer.unreachable = true;
        } else {
          cache_[id] = Entry{};
          queue_.push_back({id, runtime});
          answer.pending = true;
          if (!worker_.joinable()) worker_ = std::thread([this] { work(); });
          cv_.notify_one();
        }
      }
    }
  }
  // Said here, on the caller's thread, where the rest of the log is written.
  if (log_)
    for (const std::string& m : messages) log_(m);
  return answer;
}

long ContainerNames::get(const std::string& socket, const std::string& path, std::string& body,
                         std::string& why) const {
  CURL* h = curl_easy_init();
  if (!h) {
    why = "cannot make an HTTP client";
    return 0;
  }
  std::array<char, CURL_ERROR_SIZE> err{};
  const std::string url = "http://localhost" + path;
  curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(cfg_.timeout_ms));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err.data());
  long status = 0;
  const CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    why = "no answer within " + std::to_string(cfg_.timeout_ms) + " ms";
  } else {
    why = err[0] ? err.data() : curl_easy_strerror(rc);
  }
  curl_easy_cleanup(h);
  return status;
}

RuntimeAnswer ContainerNames::ask(const Socket& socket, const std::string& id) const {
  RuntimeAnswer a;
  if (!exists(socket.where.path)) {
    a.why = "no such socket";
    return a;
  }
  if (socket.cri) return socket.cri->status(id, cfg_.timeout_ms);
  std::string body;
  const long status = get(socket.where.path, "/containers/" + id + "/json", body, a.why);
  if (status == 200) {
    if (auto parsed = parse_inspect(body)) {
      a.kind = RuntimeAnswer::Kind::Found;
      a.info = std::move(*parsed);
    } else {
      a.why = "not an Engine API answer";
    }
  } else if (status == 404) {
    a.kind = RuntimeAnswer::Kind::NotFound;
  } else if (status != 0) {
    a.why = "HTTP status " + std::to_string(status);
  }
  return a;
}

void ContainerNames::work() {
  for (;;) {
    Request req;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      req = std::move(queue_.front());
      queue_.pop_front();
    }
    std::shared_ptr<const ContainerInfo> info;
    bool unreachable = true;
    for (std::size_t i : order_for(req.runtime)) {
      Socket socket;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (sockets_[i].down_until > mono_now()) continue;
        socket = sockets_[i];
      }
      RuntimeAnswer a = ask(socket, req.id);
      if (a.kind == RuntimeAnswer::Kind::Found) {
        info = std::make_shared<const ContainerInfo>(std::move(a.info));
        unreachable = false;
        break;
      }
      if (a.kind == RuntimeAnswer::Kind::NotFound) {
        unreachable = false;  // this runtime does not know it: a definite answer
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      Socket& s = sockets_[i];
      s.down_until = mono_now() + cfg_.retry_down_ns;
      if (!s.said) {
        s.said = true;
        messages_.push_back(
            fmt::format("container names: cannot ask {}: {}; events carry the container ID alone",
                        s.where.path, a.why));
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(req.id);
    if (it == cache_.end()) continue;
    it->second.done = true;
    it->second.info = info;
    it->second.unreachable = unreachable && !info;
    const std::uint64_t now = mono_now();
    it->second.expires_ns = now + (info          ? cfg_.max_age_ns
                                   : unreachable ? cfg_.retry_down_ns
                                                 : cfg_.negative_ns);
  }
}

}  // namespace tcpconnect
