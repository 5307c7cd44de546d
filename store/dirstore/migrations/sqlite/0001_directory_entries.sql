-- A directory shard's entries: one row per merchant key, written by
-- compare-and-swap on version. Times are Unix microseconds (0 = unset);
-- attempt_id holds a uint64 in two's complement (SQLite integers are
-- signed). abandoned is the list of abandoned attempts, "unit:id,unit:id"
-- ('' for none); the partial index finds the entries that have some.
CREATE TABLE IF NOT EXISTS directory_entries (
  mchid         TEXT    NOT NULL,
  kind          TEXT    NOT NULL,
  value         TEXT    NOT NULL,
  bucket        INTEGER NOT NULL,
  state         TEXT    NOT NULL CHECK (state IN ('pending', 'committed')),
  attempt_unit  INTEGER NOT NULL,
  attempt_id    INTEGER NOT NULL,
  fingerprint   TEXT    NOT NULL,
  record_no     TEXT    NOT NULL DEFAULT '',
  abandoned     TEXT    NOT NULL DEFAULT '',
  has_abandoned INTEGER GENERATED ALWAYS AS (abandoned <> '') VIRTUAL,
  created_us    INTEGER NOT NULL,
  updated_us    INTEGER NOT NULL,
  version       INTEGER NOT NULL CHECK (version >= 1),
  PRIMARY KEY (mchid, kind, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS directory_entries_bucket ON directory_entries (bucket, mchid, kind, value);
CREATE INDEX IF NOT EXISTS directory_entries_abandoned ON directory_entries (mchid, kind, value) WHERE has_abandoned = 1;
