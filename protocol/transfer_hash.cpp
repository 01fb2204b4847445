#include "transfer_hash.hpp"

#define XXH_STATIC_LINKING_ONLY // XXH3_state_t's layout, to save and restore it
#include <xxhash.h>

#include <cstring>
#include <new>

namespace ferry {

namespace {

constexpr std::string_view kSha256Prefix = "sha256:";
// Bumped if the saved layout ever changes; the struct size guards against
// another libxxhash or architecture reading it.
constexpr std::string_view kXxh3Prefix = "xxh3-128-state-v1:";
constexpr std::size_t kXxh3DigestBytes = sizeof(XXH128_canonical_t);

XXH3_state_t* new_xxh3_state()
{
    XXH3_state_t* state = XXH3_createState();
    if (state == nullptr) {
        throw std::bad_alloc();
    }
    // Reset leaves the custom-secret area as malloc gave it; zeroed, a saved
    // state holds no stray memory and compares equal across processes.
    std::memset(static_cast<void*>(state), 0, sizeof *state);
    XXH3_128bits_reset(state);
    return state;
}

} // namespace

std::string_view hash_name(HashKind kind)
{
    switch (kind) {
    case HashKind::sha256:
        return "sha256";
    case HashKind::xxh3_128:
        return "xxh3-128";
    }
    return "sha256";
}

std::optional<HashKind> hash_from_name(std::string_view name)
{
    for (const HashKind kind : {HashKind::sha256, HashKind::xxh3_128}) {
        if (name == hash_name(kind)) {
            return kind;
        }
    }
    return std::nullopt;
}

const std::vector<std::string>& offered_hash_names()
{
    static const std::vector<std::string> names{std::string(hash_name(HashKind::sha256)),
                                                std::string(hash_name(HashKind::xxh3_128))};
    return names;
}

bool is_digest_hex(HashKind kind, std::string_view text)
{
    return is_lower_hex(text, kind == HashKind::sha256 ? 2 * SHA256_DIGEST_LENGTH : 2 * kXxh3DigestBytes);
}

void TransferHash::FreeXxh3::operator()(XXH3_state_s* state) const
{
    XXH3_freeState(state);
}

TransferHash::TransferHash(HashKind kind) : kind_(kind)
{
    if (kind_ == HashKind::xxh3_128) {
        xxh3_.reset(new_xxh3_state());
    }
}

TransferHash::TransferHash(const TransferHash& other) : kind_(other.kind_), sha256_(other.sha256_)
{
    if (other.xxh3_) {
        xxh3_.reset(new_xxh3_state());
        XXH3_copyState(xxh3_.get(), other.xxh3_.get());
    }
}

TransferHash& TransferHash::operator=(const TransferHash& other)
{
    if (this != &other) {
        TransferHash copy(other);
        *this = std::move(copy);
    }
    return *this;
}

TransferHash::TransferHash(TransferHash&&) noexcept = default;
TransferHash& TransferHash::operator=(TransferHash&&) noexcept = default;
TransferHash::~TransferHash() = default;

void TransferHash::update(const void* data, std::size_t size)
{
    if (kind_ == HashKind::sha256) {
        sha256_.update(data, size);
    } else {
        XXH3_128bits_update(xxh3_.get(), data, size);
    }
}

std::string TransferHash::hex_digest() const
{
    if (kind_ == HashKind::sha256) {
        return sha256_.hex_digest();
    }
    // The canonical (big-endian) form is what xxh128sum prints.
    XXH128_canonical_t canonical;
    XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(xxh3_.get()));
    return to_hex(std::span(canonical.digest, sizeof canonical.digest));
}

std::string TransferHash::save_state() const
{
    if (kind_ == HashKind::sha256) {
        return std::string(kSha256Prefix) + sha256_.save_state();
    }
    std::string saved(kXxh3Prefix);
    saved += std::to_string(sizeof(XXH3_state_t));
    saved += ':';
    saved += to_hex(std::span(reinterpret_cast<const unsigned char*>(xxh3_.get()), sizeof(XXH3_state_t)));
    return saved;
}

std::optional<TransferHash> TransferHash::restore_state(std::string_view saved)
{
    if (saved.starts_with(kSha256Prefix)) {
        auto sha256 = Sha256::restore_state(saved.substr(kSha256Prefix.size()));
        if (!sha256) {
            return std::nullopt;
        }
        TransferHash restored(HashKind::sha256);
        restored.sha256_ = *sha256;
        return restored;
    }
    // States written before the kind was named are SHA-256 ones.
    if (auto sha256 = Sha256::restore_state(saved)) {
        TransferHash restored(HashKind::sha256);
        restored.sha256_ = *sha256;
        return restored;
    }
    if (!saved.starts_with(kXxh3Prefix)) {
        return std::nullopt;
    }
    saved.remove_prefix(kXxh3Prefix.size());
    const std::string expected_size = std::to_string(sizeof(XXH3_state_t)) + ":";
    if (!saved.starts_with(expected_size)) {
        return std::nullopt;
    }
    saved.remove_prefix(expected_size.size());
    // Saved states are written in lowercase; anything else was not written by us.
    if (!is_lower_hex(saved, 2 * sizeof(XXH3_state_t))) {
        return std::nullopt;
    }
    const auto raw = from_hex(saved);
    if (!raw || raw->size() != sizeof(XXH3_state_t)) {
        return std::nullopt;
    }
    // A fresh state knows where this process keeps the default secret; the
    // saved pointer is from the process that wrote the state, so it is
    // replaced. Fields that a default-secret, unseeded state always has the
    // same values in must match, which refuses states we did not write.
    TransferHash restored(HashKind::xxh3_128);
    XXH3_state_t& state = *restored.xxh3_;
    const XXH3_state_t fresh = state;
    std::memcpy(static_cast<void*>(&state), raw->data(), raw->size());
    state.extSecret = fresh.extSecret;
    if (state.useSeed != 0 || state.seed != 0 || state.secretLimit != fresh.secretLimit ||
        state.nbStripesPerBlock != fresh.nbStripesPerBlock || state.nbStripesSoFar >= state.nbStripesPerBlock ||
        state.bufferedSize > sizeof state.buffer ||
        std::memcmp(state.customSecret, fresh.customSecret, sizeof state.customSecret) != 0) {
        return std::nullopt;
    }
    return restored;
}

} // namespace ferry
