// A std::vector whose resize leaves new elements uninitialised, for scratch sized for the largest batch.
#pragma once
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace gemma {

// Value-initialising a scratch buffer writes every page of it, so a buffer sized for 512 prompt rows would stay
// resident at that size even when passes use a few rows. Default-initialisation writes nothing: a page becomes
// resident when a pass first writes it. Readers must write a row before reading it (every pass does).
template <typename T>
struct UninitAllocator : std::allocator<T> {
    using value_type = T;
    template <typename U>
    struct rebind {
        using other = UninitAllocator<U>;
    };
    UninitAllocator() noexcept = default;
    template <typename U>
    UninitAllocator(const UninitAllocator<U>&) noexcept {}
    template <typename U>
    void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
        ::new (static_cast<void*>(p)) U;
    }
    template <typename U, typename... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

template <typename T>
using UninitVector = std::vector<T, UninitAllocator<T>>;

}  // namespace gemma
