#include "goldens.h"

#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace flotilla::test {

std::vector<int> golden_greedy(const std::string& jsonPath, const std::string& model) {
  std::ifstream f(jsonPath);
  if (!f) throw std::runtime_error(jsonPath + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const size_t m = text.find("\"" + model + "\"");
  if (m == std::string::npos) throw std::runtime_error(jsonPath + ": no entry for " + model);
  const size_t key = text.find("\"greedy_from_bos_48\"", m);
  const size_t open = text.find('[', key), close = text.find(']', open);
  if (key == std::string::npos || open == std::string::npos || close == std::string::npos)
    throw std::runtime_error(jsonPath + ": no greedy_from_bos_48 for " + model);
  std::vector<int> ids;
  for (size_t i = open + 1; i < close;) {
    if (std::isdigit(static_cast<unsigned char>(text[i]))) {
      size_t used = 0;
      ids.push_back(std::stoi(text.substr(i), &used));
      i += used;
    } else {
      i++;
    }
  }
  return ids;
}

}  // namespace flotilla::test
