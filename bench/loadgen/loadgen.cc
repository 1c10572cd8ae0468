// Native gRPC load generator for bench/intake_grpc.py (built by bench/loadgen/build.sh).
//
// The county's clients run on their own machines; in the bench they share the 2 cores with the
// server under test. A Python grpc client costs about 0.45 ms of CPU per call there, as much as
// the server's gRPC layer; this one costs about 0.15 ms, so the bench measures the server.
// Both the intake API and the bare echo server get this same client.
//
// It sends pre-serialized requests (4-byte big-endian length + message, from a file made by the
// bench) to one unary method, each request once, in order, with CONCURRENCY calls in flight
// spread over CONNECTIONS HTTP/2 connections, until SECONDS pass or the requests run out, and
// prints {"ok", "errors", "seconds", "cpu"} as JSON.
#include <grpcpp/grpcpp.h>
#include <grpcpp/generic/generic_stub.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <sys/resource.h>
#include <vector>

struct Lane;
struct Run {
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  std::string method, token;
  std::vector<grpc::ByteBuffer> requests;
  std::atomic<size_t> next{0};
  std::atomic<long> ok{0}, errors{0};
  std::chrono::steady_clock::time_point stop_at;
  std::mutex mu;
  std::condition_variable cv;
  int running = 0;
};

struct Lane {
  Run* run;
  grpc::GenericStub* stub;
  std::unique_ptr<grpc::ClientContext> ctx;
  grpc::ByteBuffer response;
  void start() {
    size_t i = run->next.fetch_add(1);
    if (std::chrono::steady_clock::now() >= run->stop_at || i >= run->requests.size()) {
      std::lock_guard<std::mutex> lock(run->mu);
      if (--run->running == 0) run->cv.notify_all();
      return;
    }
    ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + run->token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    stub->UnaryCall(ctx.get(), run->method, grpc::StubOptions(), &run->requests[i], &response,
                         [this](grpc::Status s) {
                           (s.ok() ? run->ok : run->errors)++;
                           start();
                         });
  }
};

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: loadgen TARGET METHOD REQUEST_FILE SECONDS CONCURRENCY CONNECTIONS TOKEN\n");
    return 2;
  }
  Run run;
  run.method = argv[2];
  run.token = argv[7];
  std::ifstream in(argv[3], std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t off = 0; off + 4 <= data.size();) {
    auto* p = reinterpret_cast<const unsigned char*>(data.data() + off);
    size_t n = (size_t(p[0]) << 24) | (size_t(p[1]) << 16) | (size_t(p[2]) << 8) | p[3];
    grpc::Slice slice(data.data() + off + 4, n);
    run.requests.emplace_back(&slice, 1);
    off += 4 + n;
  }
  int connections = std::stoi(argv[6]);
  for (int c = 0; c < connections; c++) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own per channel
    auto channel = grpc::CreateCustomChannel(argv[1], grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      std::fprintf(stderr, "cannot connect to %s\n", argv[1]);
      return 1;
    }
    run.stubs.push_back(std::make_unique<grpc::GenericStub>(channel));
  }
  int concurrency = std::stoi(argv[5]);
  std::vector<Lane> lanes(concurrency);
  auto t0 = std::chrono::steady_clock::now();
  run.stop_at = t0 + std::chrono::milliseconds(long(std::stod(argv[4]) * 1000));
  run.running = concurrency;
  for (size_t k = 0; k < lanes.size(); k++) {
    auto& lane = lanes[k];
    lane.run = &run;
    lane.stub = run.stubs[k % run.stubs.size()].get();
    lane.start();
  }
  {
    std::unique_lock<std::mutex> lock(run.mu);
    run.cv.wait(lock, [&] { return run.running == 0; });
  }
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  double cpu = u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
  std::printf("{\"ok\": %ld, \"errors\": %ld, \"seconds\": %.4f, \"cpu\": %.4f}\n", run.ok.load(),
              run.errors.load(), elapsed, cpu);
  return 0;
}
