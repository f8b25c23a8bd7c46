// The storage thread: every database write runs here, grouped into one
// transaction (and so one fsync) per batch. Whatever arrives while a batch
// commits forms the next batch, so batches grow with load. A batch starts
// once its oldest operation has waited `linger` (or the batch is full): an
// envelope acknowledged meanwhile is withdrawn (Ticket) and never written.
//
// Each operation runs inside its own savepoint: a failing operation is
// rolled back alone and reported alone. If the commit itself fails, every
// operation of the batch is reported failed (nothing of it is stored).
// Completions run on the storage thread, after the commit; they must only
// hand the result on (post to another executor), never block.
//
// Thread-safety: Submit() and Cancel via Ticket are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "store/server_store.h"

namespace haven::server {

class StorageWorker {
 public:
  using Work = std::function<Status(ServerStore&)>;
  using Done = std::function<void(const Status&)>;

  // Lets the submitter withdraw an operation that has not started: an
  // envelope acknowledged by its recipient before its batch commits is then
  // never written at all.
  class Ticket {
   public:
    Ticket() = default;
    // True if the operation will not run (its completion then reports
    // Cancelled); false if it already started or finished.
    bool TryCancel();

   private:
    friend class StorageWorker;
    std::shared_ptr<std::atomic<int>> state_;
  };

  struct Stats {
    std::uint64_t batches = 0;
    std::uint64_t operations = 0;
    std::uint64_t cancelled = 0;
    std::uint64_t failed_commits = 0;
  };

  StorageWorker(std::unique_ptr<ServerStore> store, std::size_t max_batch,
                std::chrono::microseconds linger = {});
  ~StorageWorker();  // Stop()
  StorageWorker(const StorageWorker&) = delete;
  StorageWorker& operator=(const StorageWorker&) = delete;

  Ticket Submit(Work work, Done done);
  // Runs everything already submitted, then joins the thread. Later
  // submissions complete with Unavailable.
  void Stop();
  Stats stats() const;

 private:
  struct Operation {
    Work work;
    Done done;
    std::shared_ptr<std::atomic<int>> state;
    std::chrono::steady_clock::time_point queued_at;
  };
  void Loop();
  void RunBatch(std::deque<Operation>& batch);

  std::unique_ptr<ServerStore> store_;
  const std::size_t max_batch_;
  const std::chrono::microseconds linger_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Operation> queue_;  // guarded by mu_
  bool stopping_ = false;        // guarded by mu_
  Stats stats_;                  // guarded by mu_
  std::thread thread_;
};

}  // namespace haven::server
