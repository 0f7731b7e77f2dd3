// Config::services: a vector of services whose elements are shared between
// copies of a Config until one copy changes them (copy-on-write per
// service).  Control thread only.
//
// Why: the Registry keeps several versions of the Config (file layer,
// desired, view, a staged change).  Copying a Config copies pointers, not
// 10k services with their endpoints, and a change that edits one service
// clones that one service only.  Which services a change touched is then
// visible by identity (shared(i) of two lists compared by pointer), so
// validation and the snapshot build can skip the rest (issue 14, "Scale").
//
// Reading is as with std::vector<ServiceConfig> (const element references,
// random-access iterators).  Writing through a non-const reference (operator[],
// front(), back(), a non-const iterator) first gives this list its own copy of
// that service when another list shares it.  So iterate a non-const list only
// to change what you iterate: a search should go through a const view
// (std::as_const, or a const Config&), or it copies every service it looks at.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

#include "control/config/service_config.hpp"

namespace podgate::ctl {

class ServiceList {
  using Ptr = std::shared_ptr<ServiceConfig>;
  using Vec = std::vector<Ptr>;

  // Random-access iterator over the services; `Mutable` ones clone a shared
  // service on dereference.
  template <bool Mutable>
  class Iter {
    using Base = std::conditional_t<Mutable, Vec::iterator, Vec::const_iterator>;

   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = ServiceConfig;
    using difference_type = std::ptrdiff_t;
    using reference = std::conditional_t<Mutable, ServiceConfig&, const ServiceConfig&>;
    using pointer = std::conditional_t<Mutable, ServiceConfig*, const ServiceConfig*>;

    Iter() = default;
    explicit Iter(Base it) : it_(it) {}
    // iterator -> const_iterator
    template <bool M = Mutable, typename = std::enable_if_t<!M>>
    Iter(const Iter<true>& other) : it_(other.base()) {}  // NOLINT(google-explicit-constructor)

    reference operator*() const {
      if constexpr (Mutable) {
        own(*it_);
      }
      return **it_;
    }
    pointer operator->() const { return &**this; }
    reference operator[](difference_type n) const { return *(*this + n); }
    Iter& operator++() { ++it_; return *this; }
    Iter operator++(int) { Iter t = *this; ++it_; return t; }
    Iter& operator--() { --it_; return *this; }
    Iter operator--(int) { Iter t = *this; --it_; return t; }
    Iter& operator+=(difference_type n) { it_ += n; return *this; }
    Iter& operator-=(difference_type n) { it_ -= n; return *this; }
    friend Iter operator+(Iter a, difference_type n) { return a += n; }
    friend Iter operator+(difference_type n, Iter a) { return a += n; }
    friend Iter operator-(Iter a, difference_type n) { return a -= n; }
    friend difference_type operator-(const Iter& a, const Iter& b) { return a.it_ - b.it_; }
    friend bool operator==(const Iter& a, const Iter& b) { return a.it_ == b.it_; }
    friend auto operator<=>(const Iter& a, const Iter& b) { return a.it_ <=> b.it_; }
    const Base& base() const { return it_; }

   private:
    Base it_{};
  };

 public:
  using value_type = ServiceConfig;
  using size_type = std::size_t;
  using iterator = Iter<true>;
  using const_iterator = Iter<false>;
  using reference = ServiceConfig&;
  using const_reference = const ServiceConfig&;

  ServiceList() = default;
  ServiceList(std::initializer_list<ServiceConfig> services) {
    for (const ServiceConfig& s : services) push_back(s);
  }
  ServiceList(std::vector<ServiceConfig> services) {  // NOLINT(google-explicit-constructor)
    items_.reserve(services.size());
    for (ServiceConfig& s : services) push_back(std::move(s));
  }

  // ---- reading ----
  size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }
  const ServiceConfig& operator[](size_t i) const { return *items_[i]; }
  const ServiceConfig& at(size_t i) const { return *items_.at(i); }
  const ServiceConfig& front() const { return *items_.front(); }
  const ServiceConfig& back() const { return *items_.back(); }
  const_iterator begin() const { return const_iterator(items_.cbegin()); }
  const_iterator end() const { return const_iterator(items_.cend()); }
  const_iterator cbegin() const { return begin(); }
  const_iterator cend() const { return end(); }

  // The service itself, shared: two lists hold the same service object
  // until one of them changes it (identity = unchanged since the copy).
  std::shared_ptr<const ServiceConfig> shared(size_t i) const { return items_[i]; }
  const ServiceConfig* identity(size_t i) const noexcept { return items_[i].get(); }

  // A plain vector of copies (for callers that want one).
  std::vector<ServiceConfig> to_vector() const {
    std::vector<ServiceConfig> out;
    out.reserve(size());
    for (const ServiceConfig& s : *this) out.push_back(s);
    return out;
  }

  // ---- writing (copy-on-write per service) ----
  ServiceConfig& operator[](size_t i) { return own(items_[i]); }
  ServiceConfig& at(size_t i) { return own(items_.at(i)); }
  ServiceConfig& front() { return own(items_.front()); }
  ServiceConfig& back() { return own(items_.back()); }
  iterator begin() { return iterator(items_.begin()); }
  iterator end() { return iterator(items_.end()); }

  void reserve(size_t n) { items_.reserve(n); }
  void clear() noexcept { items_.clear(); }
  void push_back(ServiceConfig s) { items_.push_back(std::make_shared<ServiceConfig>(std::move(s))); }
  template <typename... Args>
  ServiceConfig& emplace_back(Args&&... args) {
    items_.push_back(std::make_shared<ServiceConfig>(std::forward<Args>(args)...));
    return *items_.back();
  }
  void pop_back() { items_.pop_back(); }
  iterator erase(const_iterator pos) { return iterator(items_.erase(pos.base())); }
  iterator erase(const_iterator first, const_iterator last) {
    return iterator(items_.erase(first.base(), last.base()));
  }
  // Replaces service i by `s` (no clone of the old one).
  void replace(size_t i, ServiceConfig s) { items_[i] = std::make_shared<ServiceConfig>(std::move(s)); }
  // Makes service i the very service `from` holds at j, shared (the same
  // identity): a new version keeps a service of an older one that it did not
  // change (Registry::make, the view).
  void share(size_t i, const ServiceList& from, size_t j) { items_[i] = from.items_[j]; }

  friend bool operator==(const ServiceList& a, const ServiceList& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a.items_[i] != b.items_[i] && !(*a.items_[i] == *b.items_[i])) return false;
    }
    return true;
  }

 private:
  static ServiceConfig& own(Ptr& p) {
    if (p.use_count() > 1) p = std::make_shared<ServiceConfig>(*p);
    return *p;
  }

  Vec items_;
};

// What a change did to a list of services, by identity: a service copied
// (changed) or replaced counts as removed from `before` and added to `after`.
struct ServiceDiff {
  std::vector<std::shared_ptr<const ServiceConfig>> removed;  // of `before`, not in `after`
  std::vector<size_t> added;  // indices into `after` of services not in `before`
  bool empty() const noexcept { return removed.empty() && added.empty(); }
};

// Compares by identity in one pass when the lists are in the same order
// apart from services inserted, removed or replaced (every runtime change);
// any other reordering shows as services removed and added, never as
// unchanged.  Pointer compares only: O(services), no service is read.
ServiceDiff diff_services(const ServiceList& before, const ServiceList& after);

}  // namespace podgate::ctl
