#include "enrich/cri/client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "runtime_v1.grpc.pb.h"

namespace tcpconnect {

namespace cri = runtime::v1;

struct CriClient::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<cri::RuntimeService::Stub> stub;
};

CriClient::CriClient(std::string socket) : socket_(std::move(socket)) {}
CriClient::~CriClient() = default;

RuntimeAnswer CriClient::status(const std::string& id, std::uint32_t timeout_ms) {
  if (!impl_) {
    impl_ = std::make_unique<Impl>();
    impl_->channel = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
    impl_->stub = cri::RuntimeService::NewStub(impl_->channel);
  }
  cri::ContainerStatusRequest req;
  req.set_container_id(id);
  cri::ContainerStatusResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  const grpc::Status st = impl_->stub->ContainerStatus(&ctx, req, &resp);
  RuntimeAnswer answer;
  if (st.ok()) {
    const cri::ContainerStatus& s = resp.status();
    const auto& labels = s.labels();
    answer.kind = RuntimeAnswer::Kind::Found;
    answer.info = info_from_cri(s.metadata().name(), s.image().image(), s.image_ref(),
                                [&labels](std::string_view key) -> std::string_view {
                                  auto it = labels.find(std::string(key));
                                  return it == labels.end() ? std::string_view{} : it->second;
                                });
    return answer;
  }
  if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
    answer.kind = RuntimeAnswer::Kind::NotFound;
    return answer;
  }
  answer.why = st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                   ? "no answer within " + std::to_string(timeout_ms) + " ms"
                   : "CRI error " + std::to_string(static_cast<int>(st.error_code())) + ": " +
                         cut_runtime_field(st.error_message());
  impl_.reset();  // a new connection next time, without the channel's reconnect backoff
  return answer;
}

}  // namespace tcpconnect
