#include "store/storage_worker.h"

namespace haven::server {
namespace {
enum OpState : int { kQueued = 0, kRunning = 1, kCancelled = 2 };
}  // namespace

bool StorageWorker::Ticket::TryCancel() {
  if (!state_) return false;
  int expected = kQueued;
  return state_->compare_exchange_strong(expected, kCancelled) || expected == kCancelled;
}

StorageWorker::StorageWorker(std::unique_ptr<ServerStore> store, std::size_t max_batch,
                             std::chrono::microseconds linger)
    : store_(std::move(store)), max_batch_(max_batch == 0 ? 1 : max_batch), linger_(linger) {
  thread_ = std::thread([this] { Loop(); });
}

StorageWorker::~StorageWorker() { Stop(); }

StorageWorker::Ticket StorageWorker::Submit(Work work, Done done) {
  Ticket ticket;
  ticket.state_ = std::make_shared<std::atomic<int>>(kQueued);
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back({std::move(work), std::move(done), ticket.state_,
                        std::chrono::steady_clock::now()});
      cv_.notify_one();
      return ticket;
    }
  }
  done(Status::Unavailable("storage is shutting down"));
  return ticket;
}

void StorageWorker::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

StorageWorker::Stats StorageWorker::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void StorageWorker::Loop() {
  while (true) {
    std::deque<Operation> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything ran
      if (linger_.count() > 0) {
        cv_.wait_until(lock, queue_.front().queued_at + linger_,
                       [this] { return stopping_ || queue_.size() >= max_batch_; });
      }
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    RunBatch(batch);
  }
}

void StorageWorker::RunBatch(std::deque<Operation>& batch) {
  std::vector<Status> results(batch.size());
  std::size_t ran = 0, cancelled = 0;
  sqlcipher::Database& db = store_->db();
  sqlcipher::Transaction txn(db);
  Status commit = txn.status();
  if (commit.ok()) {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      int expected = kQueued;
      if (!batch[i].state->compare_exchange_strong(expected, kRunning)) {
        results[i] = Status::Cancelled("withdrawn before it was written");
        ++cancelled;
        continue;
      }
      ++ran;
      Status st = db.Run("SAVEPOINT op");
      if (st.ok()) {
        st = batch[i].work(*store_);
        if (!st.ok()) (void)db.Run("ROLLBACK TO op");
        Status release = db.Run("RELEASE op");
        if (st.ok() && !release.ok()) st = release;
      }
      results[i] = st;
    }
    commit = txn.Commit();
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.batches;
    stats_.operations += ran;
    stats_.cancelled += cancelled;
    if (!commit.ok()) ++stats_.failed_commits;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Status& st = commit.ok() || results[i].code() == Status::Code::kCancelled
                           ? results[i]
                           : Status::Unavailable("the batch could not be committed");
    if (batch[i].done) batch[i].done(st);
  }
}

}  // namespace haven::server
