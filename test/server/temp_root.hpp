// A fresh folder under /tmp for one test, removed with everything in it.
#pragma once

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

class TempRoot {
public:
    TempRoot()
    {
        std::string pattern = (std::filesystem::temp_directory_path() / "ferry-test-XXXXXX").string();
        path_ = ::mkdtemp(pattern.data());
    }
    TempRoot(const TempRoot&) = delete;
    TempRoot& operator=(const TempRoot&) = delete;
    ~TempRoot()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    const std::string& path() const { return path_; }

    void write(const std::string& name, const std::string& content) const
    {
        std::ofstream(path_ + "/" + name, std::ios::binary) << content;
    }

    std::string read(const std::string& name) const
    {
        std::ifstream in(path_ + "/" + name, std::ios::binary);
        std::ostringstream content;
        content << in.rdbuf();
        return content.str();
    }

    bool exists(const std::string& name) const
    {
        struct stat st {};
        return ::lstat((path_ + "/" + name).c_str(), &st) == 0;
    }

    // Entries whose name starts with '.', other than "." and "..".
    int hidden_entries() const
    {
        int count = 0;
        for (const auto& entry : std::filesystem::directory_iterator(path_)) {
            if (entry.path().filename().string().front() == '.') {
                ++count;
            }
        }
        return count;
    }

private:
    std::string path_;
};
