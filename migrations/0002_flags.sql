-- Integrity: credit the ledger refused, and swarms whose credited upload runs
-- far ahead of their downloads. Flags inform admins; they never block credit.
-- Kept for FLAG_RETENTION seconds, as are the credit_batches ids.
CREATE TABLE flags (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  info_hash TEXT NOT NULL,
  reason TEXT NOT NULL,
  reported INTEGER NOT NULL,
  credited INTEGER NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX flags_at ON flags(at);
CREATE INDEX credit_batches_applied ON credit_batches(applied_at);
