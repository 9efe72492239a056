-- The site (private mode): admin members, search by name, and sorting by
-- swarm counts without scanning.
-- An admin member may use the admin API with the site's session cookie;
-- only the operator (ADMIN_TOKEN) promotes or demotes one.
ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
-- Seeders, leechers and completed downloads, mirrored from the swarm when it
-- publishes its scrape counters (at most once per PUBLISH_WINDOW, on change),
-- so lists sort by them with an index.
ALTER TABLE torrents ADD COLUMN seeders INTEGER NOT NULL DEFAULT 0;
ALTER TABLE torrents ADD COLUMN leechers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE torrents ADD COLUMN completed INTEGER NOT NULL DEFAULT 0;
-- Lists page by keyset (value, info_hash): one index per sort order.
DROP INDEX torrents_created;
CREATE INDEX torrents_added ON torrents(created_at, info_hash);
CREATE INDEX torrents_size ON torrents(size, info_hash);
CREATE INDEX torrents_seeders ON torrents(seeders, info_hash);
CREATE INDEX torrents_leechers ON torrents(leechers, info_hash);
CREATE INDEX torrents_completed ON torrents(completed, info_hash);
CREATE INDEX torrents_uploader ON torrents(uploader, created_at, info_hash);
-- Search by name: FTS5 over the name, with the info hash to join on (not
-- indexed for search). Kept in step by triggers; names never change.
CREATE VIRTUAL TABLE torrents_fts USING fts5(name, info_hash UNINDEXED, tokenize='unicode61 remove_diacritics 2');
INSERT INTO torrents_fts(name, info_hash) SELECT name, info_hash FROM torrents;
CREATE TRIGGER torrents_fts_insert AFTER INSERT ON torrents BEGIN
  INSERT INTO torrents_fts(name, info_hash) VALUES (new.name, new.info_hash);
END;
CREATE TRIGGER torrents_fts_delete AFTER DELETE ON torrents BEGIN
  DELETE FROM torrents_fts WHERE info_hash = old.info_hash;
END;
