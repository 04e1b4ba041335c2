// The native engine without Node: checks each SIMD kernel set against the scalar one on odd shapes,
// greedy decoding of stories260K against goldens.json (every kernel set this CPU runs, single and
// batched), then prints decode and prefill tokens/s.
//
//   engine-test [--models DIR]                       checks + speed on stories260K
//   engine-test --gemm ROUNDS [--threads N]          the matmul driver alone: GFLOPS of every kernel set
//   engine-test --gemm-layer ROUNDS [--threads N]    one 110M layer's f32 panel matmuls as the backend calls them, by tokens per step
//   engine-test --model FILE [--format int8] [--threads N] [--decode N] [--prefill N] [--batch B] [--rounds R] [--kv f32|f16|int8]
//                                                    speed only: decode against the bandwidth bound, B sequences vs one
//   --device cpu|cuda|auto on either (default cpu); with cuda the kernels line says cuda-cublaslt|cuda-wmma
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>
#include <sys/stat.h>

#include "../src/core/cpu-info.h"
#include "../src/core/error.h"
#include "../src/cpu/kernels.h"
#include "gemm-bench.h"
#include "goldens.h"
#include "f32act-checks.h"
#include "kernel-checks.h"
#include "kv-int8-checks.h"
#include "pool-checks.h"
#include "llama2c-spec.h"
#include "single-seq.h"

using namespace flotilla;
using namespace flotilla::test;

namespace {

struct Options {
  std::string models, model, format = "auto", device = "cpu", kv = "f32";
  int threads = 0, decode = 128, prefill = 256, gemm = 0, gemmLayer = 0, batch = 1, rounds = 1;
};

bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

std::string find_models(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("FLOTILLA_MODELS")) return env;
  // the repository's test models (test/fixtures/models), from native/ (npm run test:cpp) or the root
  for (const char* c : {"../test/fixtures/models", "test/fixtures/models", "../../test/fixtures/models"}) {
    if (exists(std::string(c) + "/goldens.json")) return c;
  }
  return "";
}

// isa: a FLOTILLA_CPU_ISA value, or "" for what the environment this program started with chose.
std::unique_ptr<Engine> load(const std::string& file, const Options& o, const std::string& isa) {
  static const char* startIsa = std::getenv("FLOTILLA_CPU_ISA");
  static const std::string given = startIsa ? startIsa : "";
  const std::string want = isa.empty() ? given : isa;
  if (want.empty()) unsetenv("FLOTILLA_CPU_ISA");
  else setenv("FLOTILLA_CPU_ISA", want.c_str(), 1);
  LoadSpec spec = llama2c_spec(file);
  parse_weight_format(o.format, &spec.weightFormat);
  spec.numThreads = o.threads;
  if (!parse_kv_type(o.kv, &spec.kvType)) spec.kvType = KvType::F32;
  spec.device = o.device == "cuda" ? LoadSpec::Device::Cuda : o.device == "auto" ? LoadSpec::Device::Auto : LoadSpec::Device::Cpu;
  spec.numBlocks = 256;
  spec.maxBatchTokens = std::max(1024, o.prefill);
  spec.maxBatchSeqs = std::max(8, o.batch);
  return Engine::load(spec);
}

std::vector<int> greedy(Engine& e, int n) {
  SeqDriver d(e, 1, n + 1);
  std::vector<int> out = {1};
  while (static_cast<int>(out.size()) <= n) out.push_back(d.step({{out.back()}})[0]);
  return out;
}

bool check_goldens(const std::string& dir, const Options& o) {
  const std::vector<int> want = golden_greedy(dir + "/goldens.json", "stories260K");
  bool ok = true;
  std::vector<std::string> isas;
  for (const char* isa : {"avx512", "avx2", "scalar"})
    if (o.device == "cpu" && cpu_runs(isa)) isas.push_back(isa);
  if (isas.empty()) isas.push_back("");
  for (const std::string& isa : isas) {
    auto e = load(dir + "/stories260K/stories260K.bin", o, isa);
    const bool pass = greedy(*e, static_cast<int>(want.size()) - 1) == want;
    std::printf("%s greedy from BOS == goldens (%zu tokens, %s kernels)\n", pass ? "PASS" : "FAIL", want.size(), e->kernels());
    ok &= pass;
  }
  // four sequences in one batch, started from different golden prefixes, against the goldens
  auto e = load(dir + "/stories260K/stories260K.bin", o, "");
  SeqDriver d(*e, 4, 64);
  std::vector<std::vector<int>> next(4);
  for (int s = 0; s < 4; s++) next[s].assign(want.begin(), want.begin() + 1 + 5 * s);
  bool batchOk = true;
  for (int step = 0; step < 20; step++) {
    const std::vector<int> got = d.step(next);
    for (int s = 0; s < 4; s++) {
      const size_t at = 1 + 5 * s + step;
      batchOk &= at < want.size() && got[s] == want[at];
      next[s] = {got[s]};
    }
  }
  std::printf("%s batch of 4 (prefills of 1..16 tokens, then decodes) == goldens\n", batchOk ? "PASS" : "FAIL");
  return ok && batchOk;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Decode tokens/s of `seqs` sequences over `steps` steps after a one-token prefill; cores busy in *busy.
double decode_rate(Engine& e, int seqs, int steps, double* busy) {
  SeqDriver d(e, seqs, steps + 2);
  std::vector<std::vector<int>> next(seqs, std::vector<int>{1});
  std::vector<int> got = d.step(next);
  const double t0 = now(), c0 = cpu_now();
  for (int i = 0; i < steps; i++) {
    for (int s = 0; s < seqs; s++) next[s] = {got[s]};
    got = d.step(next);
  }
  const double wall = now() - t0;
  *busy = (cpu_now() - c0) / wall;
  return seqs * steps / wall;
}

// Each round: the read bandwidth, single-sequence decode, then batched decode, so the ratios of a
// round are measured side by side under the same machine load.
void bench(const std::string& file, const Options& o) {
  auto e = load(file, o, "");
  const int n = std::min(o.decode, e->config().maxSeqLen - 2), bsteps = std::max(2, std::min(14, n / 4));
  std::printf("decode  %s %s, %d threads, weights %.1f MB\n", file.c_str(), e->kernels(), e->numThreads(), e->weightBytes() / 1048576.0);
  for (int round = 0; round < o.rounds; round++) {
    const double bound = measure_read_bandwidth(256u << 20) / double(e->weightBytes());
    double busy1 = 0, busyB = 0;
    const double single = decode_rate(*e, 1, n, &busy1);
    const double batch = o.batch > 1 ? decode_rate(*e, o.batch, bsteps, &busyB) : 0;
    std::printf("  single %.1f tok/s = %.0f%% of the bandwidth bound %.1f tok/s (%.2f cores busy)", single, 100 * single / bound, bound, busy1);
    if (o.batch > 1) std::printf("; batch %d: %.1f tok/s = %.2fx single (%.2f cores busy)", o.batch, batch, batch / single, busyB);
    std::printf("\n");
  }
  const int p = std::min(o.prefill, e->config().maxSeqLen);
  SeqDriver pd(*e, 1, p);
  const double t1 = now();
  pd.step({std::vector<int>(p, 5)});
  std::printf("prefill %s: %.1f tok/s (%d tokens in one step)\n", file.c_str(), p / (now() - t1), p);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--models") o.models = v;
    else if (k == "--model") o.model = v;
    else if (k == "--format") o.format = v;
    else if (k == "--threads") o.threads = std::atoi(v.c_str());
    else if (k == "--decode") o.decode = std::atoi(v.c_str());
    else if (k == "--prefill") o.prefill = std::atoi(v.c_str());
    else if (k == "--device") o.device = v;
    else if (k == "--gemm") o.gemm = std::atoi(v.c_str());
    else if (k == "--gemm-layer") o.gemmLayer = std::atoi(v.c_str());
    else if (k == "--batch") o.batch = std::atoi(v.c_str());
    else if (k == "--rounds") o.rounds = std::atoi(v.c_str());
    else if (k == "--kv") o.kv = v;
    else std::fprintf(stderr, "unknown option %s\n", k.c_str());
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    if (o.gemmLayer > 0) {
      bench_layer_gemm(o.threads, o.gemmLayer);
      return 0;
    }
    if (o.gemm > 0) {
      bench_gemm(o.threads, o.gemm);
      return 0;
    }
    if (!o.model.empty()) {
      bench(o.model, o);
      return 0;
    }
    const std::string dir = find_models(o.models);
    if (dir.empty()) {
      std::printf("SKIP: no models folder (pass --models DIR or set FLOTILLA_MODELS)\n");
      return 77;
    }
    const bool kernelsOk = check_pool() & (o.device != "cpu" || (check_kernels() & check_kv_int8() & check_f32act()));
    const bool ok = check_goldens(dir, o) && kernelsOk;
    bench(dir + "/stories260K/stories260K.bin", o);
    return ok ? 0 : 1;
  } catch (const EngineError& e) {
    std::fprintf(stderr, "error %s: %s\n", e.code().c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
