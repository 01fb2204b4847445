// Ownership of a libuv handle that lives on the heap.
//
// libuv may touch a handle until its close callback has run, so the memory
// must end there and nowhere else. A HandleOwner holds a `Node` (a struct
// whose first member `handle` is the uv handle, next to whatever must live
// exactly as long, say a descriptor its destructor closes): dropping the owner
// (reset() or its destructor) calls uv_close, and the Node is deleted in the
// close callback. The close callback touches nothing but the Node, so
// whoever held the owner may be gone by then.
//
// `handle.data` belongs to the code that uses the handle (its callbacks find
// their object through it); the close callback does not use it.
#pragma once

#include <uv.h>

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

namespace ferry::server {

template <typename Node>
class HandleOwner {
public:
    HandleOwner() = default;
    // Takes a Node whose handle is initialised (uv_*_init succeeded): from
    // here on only the close callback may free it. A Node whose init failed
    // is not a libuv handle yet and is freed by its unique_ptr as usual.
    explicit HandleOwner(std::unique_ptr<Node> node) : node_(node.release()) {}
    HandleOwner(const HandleOwner&) = delete;
    HandleOwner& operator=(const HandleOwner&) = delete;
    HandleOwner(HandleOwner&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
    HandleOwner& operator=(HandleOwner&& other) noexcept
    {
        if (this != &other) {
            reset();
            node_ = std::exchange(other.node_, nullptr);
        }
        return *this;
    }
    ~HandleOwner() { reset(); }

    explicit operator bool() const { return node_ != nullptr; }
    Node* get() const { return node_; }
    Node* operator->() const { return node_; }

    // Begins closing the handle; the Node is freed in the close callback.
    void reset() noexcept
    {
        if (node_ == nullptr) {
            return;
        }
        // The Node is found again from the handle's address, so `data`
        // stays free for the handle's users.
        uv_close(reinterpret_cast<uv_handle_t*>(&node_->handle), &HandleOwner::on_close);
        node_ = nullptr;
    }

private:
    static void on_close(uv_handle_t* handle) noexcept
    {
        // `handle` is the Node's first member, so the two share an address.
        static_assert(std::is_standard_layout_v<Node> && offsetof(Node, handle) == 0,
                      "a Node begins with its uv handle");
        delete reinterpret_cast<Node*>(handle);
    }

    Node* node_ = nullptr;
};

} // namespace ferry::server
