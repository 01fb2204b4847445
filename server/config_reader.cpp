#include "config_reader.hpp"

#include <algorithm>
#include <set>
#include <string>

namespace ferry::server {

namespace {

// CLI11 strips a quote only when the value both starts and ends with it, so
// an opening quote still in front of a value was never closed.
bool opens_unclosed_quote(const std::string& value)
{
    if (value.empty() || (value.front() != '"' && value.front() != '\'' && value.front() != '`')) {
        return false;
    }
    return value.size() < 2 || value.back() != value.front();
}

} // namespace

std::vector<CLI::ConfigItem> ConfigReader::from_config(std::istream& input) const
{
    std::vector<CLI::ConfigItem> items = CLI::ConfigTOML::from_config(input);
    for (const auto& item : items) {
        for (const auto& value : item.inputs) {
            if (opens_unclosed_quote(value)) {
                throw CLI::ConfigError("the value of key " + item.fullname() + " opens a quote (" +
                                       std::string(1, value.front()) + ") that the line never closes");
            }
        }
    }
    // Keep only the last item of each key. Section markers ("++", "--")
    // repeat by design and stay where they are.
    std::set<std::string> seen;
    std::vector<CLI::ConfigItem> last_of_each;
    for (auto item = items.rbegin(); item != items.rend(); ++item) {
        const bool marker = item->name == "++" || item->name == "--";
        if (marker || seen.insert(item->fullname()).second) {
            last_of_each.push_back(std::move(*item));
        }
    }
    std::reverse(last_of_each.begin(), last_of_each.end());
    return last_of_each;
}

} // namespace ferry::server
