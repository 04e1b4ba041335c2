// The native engine without Node: checks greedy decoding of stories260K against goldens.json (AVX2 and
// scalar kernels, single and batched), then prints decode and prefill tokens/s.
//
//   engine-test [--models DIR]                       checks + speed on stories260K
//   engine-test --model FILE [--format int8] [--threads N] [--decode N] [--prefill N]   speed only
//   --device cpu|cuda|auto on either (default cpu); with cuda the kernels line says cuda-cublaslt|cuda-wmma
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>
#include <sys/stat.h>

#include "../src/core/error.h"
#include "goldens.h"
#include "llama2c-spec.h"
#include "single-seq.h"

using namespace flotilla;
using namespace flotilla::test;

namespace {

struct Options {
  std::string models, model, format = "auto", device = "cpu";
  int threads = 0, decode = 128, prefill = 256;
};

bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

std::string find_models(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("FLOTILLA_MODELS")) return env;
  for (const char* c : {"../shared/models", "../../shared/models", "../../../shared/models", "../../../../shared/models"}) {
    if (exists(std::string(c) + "/goldens.json")) return c;
  }
  return "";
}

std::unique_ptr<Engine> load(const std::string& file, const Options& o, bool scalar) {
  if (scalar) setenv("FLOTILLA_FORCE_SCALAR", "1", 1);
  else unsetenv("FLOTILLA_FORCE_SCALAR");
  LoadSpec spec = llama2c_spec(file);
  parse_weight_format(o.format, &spec.weightFormat);
  spec.numThreads = o.threads;
  spec.device = o.device == "cuda" ? LoadSpec::Device::Cuda : o.device == "auto" ? LoadSpec::Device::Auto : LoadSpec::Device::Cpu;
  spec.numBlocks = 256;
  spec.maxBatchTokens = std::max(1024, o.prefill);
  spec.maxBatchSeqs = 8;
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
  for (bool scalar : o.device == "cpu" ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
    auto e = load(dir + "/stories260K/stories260K.bin", o, scalar);
    const bool pass = greedy(*e, static_cast<int>(want.size()) - 1) == want;
    std::printf("%s greedy from BOS == goldens (%zu tokens, %s kernels)\n", pass ? "PASS" : "FAIL", want.size(), e->kernels());
    ok &= pass;
  }
  // four sequences in one batch, started from different golden prefixes, against the goldens
  auto e = load(dir + "/stories260K/stories260K.bin", o, false);
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

void bench(const std::string& file, const Options& o) {
  auto e = load(file, o, false);
  const int n = std::min(o.decode, e->config().maxSeqLen - 1);
  SeqDriver d(*e, 1, n + 2);
  int tok = d.step({{1}})[0];
  const double t0 = now(), c0 = cpu_now();
  for (int i = 0; i < n; i++) tok = d.step({{tok}})[0];
  const double wall = now() - t0, cpu = cpu_now() - c0;
  std::printf("decode  %s %s: %.1f tok/s (%d tokens, %.2f cores busy of %d, weights %.1f MB)\n", file.c_str(), e->kernels(),
              n / wall, n, cpu / wall, e->numThreads(), e->weightBytes() / 1048576.0);
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
    else std::fprintf(stderr, "unknown option %s\n", k.c_str());
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    if (!o.model.empty()) {
      bench(o.model, o);
      return 0;
    }
    const std::string dir = find_models(o.models);
    if (dir.empty()) {
      std::printf("SKIP: no models folder (pass --models DIR or set FLOTILLA_MODELS)\n");
      return 77;
    }
    const bool ok = check_goldens(dir, o);
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
