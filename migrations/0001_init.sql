-- Private mode: accounts, tokens, invites, the torrent registry and the
-- ledger that makes credit flushes from swarms exactly-once.
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL,
  passkey TEXT NOT NULL UNIQUE,
  uploaded INTEGER NOT NULL DEFAULT 0,
  downloaded INTEGER NOT NULL DEFAULT 0,
  banned INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE tokens (
  token_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL
);
CREATE TABLE invites (
  code TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  used_at INTEGER,
  used_by INTEGER REFERENCES users(id)
);
CREATE TABLE torrents (
  info_hash TEXT PRIMARY KEY,
  v2_hash TEXT UNIQUE,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  uploader INTEGER REFERENCES users(id),
  freeleech INTEGER NOT NULL DEFAULT 0,
  torrent BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX torrents_created ON torrents(created_at);
CREATE TABLE credit_batches (
  id TEXT PRIMARY KEY,
  applied_at INTEGER NOT NULL
);
