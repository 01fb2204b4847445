// A fault for the tests, preloaded into ferryd (LD_PRELOAD): readdir(3)
// fails with EIO, as a damaged disk or a network file system's folder
// read can part way through a folder, where it would have returned the
// entry named by FERRY_READDIR_FAULT_NAME. The entries read before it are
// returned as usual; nothing else changes. Not installed.
//
// The 64-bit names are wanted as the library has them: meson builds with
// _FILE_OFFSET_BITS=64, which would turn readdir into readdir64 here.
#undef _FILE_OFFSET_BITS
#include <dirent.h>
#include <dlfcn.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace {

template <typename Entry>
Entry* read_or_fail(const char* symbol, DIR* dir)
{
    using Read = Entry* (*)(DIR*);
    // The next definition in the search order: the C library's, or a
    // sanitizer's interceptor in front of it.
    static const Read real = reinterpret_cast<Read>(::dlsym(RTLD_NEXT, symbol));
    Entry* entry = real(dir);
    const char* poison = std::getenv("FERRY_READDIR_FAULT_NAME");
    if (entry != nullptr && poison != nullptr && std::strcmp(entry->d_name, poison) == 0) {
        errno = EIO;
        return nullptr;
    }
    return entry;
}

} // namespace

extern "C" {

struct dirent* readdir(DIR* dir)
{
    return read_or_fail<struct dirent>("readdir", dir);
}

struct dirent64* readdir64(DIR* dir)
{
    return read_or_fail<struct dirent64>("readdir64", dir);
}

} // extern "C"
