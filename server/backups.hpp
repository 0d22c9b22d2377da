// fieldsyncd's own backups (docs/reliability.md, "Backups"): a copy of the database every
// `backup_interval_s` into `backup_dir`, named by its time, the newest `backup_keep` kept.
// The copying itself is backup_database (sync/storage_check.hpp); this is the folder's side.
//
// Thread-safety: free functions over the file system; the server calls them from one thread at
// a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace fieldsync::server {

// "fieldsync-20261129-021500.db" for a copy made at that time (UTC).
std::string backup_file_name(std::chrono::system_clock::time_point at);
// The backups in `dir` (names as backup_file_name gives them), oldest first. A name from the
// future (made while the clock was ahead, before somebody corrected it) counts as older than
// any other, so that the copies made after the correction are the ones kept. Other files are
// never looked at, listed or deleted.
std::vector<std::filesystem::path>
list_backups(const std::filesystem::path& dir,
             std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
// Deletes the oldest backups until `keep` are left; returns how many it deleted.
std::size_t
prune_backups(const std::filesystem::path& dir, std::size_t keep,
              std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
// Deletes what copies cut off by a crash or a full disk left (fieldsync-*.db.partial and its
// -wal, -shm, -journal); returns how many files.
std::size_t remove_unfinished_backups(const std::filesystem::path& dir);
// When the newest backup in `dir` was made, from its name (names from the future ignored);
// none if there is none.
std::optional<std::chrono::system_clock::time_point>
newest_backup(const std::filesystem::path& dir,
              std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
// How long to wait before the next backup: one interval after the newest, but not before
// `first_delay` from now (the server has just started) and not after one interval from now.
std::chrono::seconds next_backup_in(std::optional<std::chrono::system_clock::time_point> newest,
                                    std::chrono::system_clock::time_point now,
                                    std::chrono::seconds interval,
                                    std::chrono::seconds first_delay);

} // namespace fieldsync::server
