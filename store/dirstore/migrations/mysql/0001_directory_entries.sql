-- A directory shard's entries: one row per merchant key, written by
-- compare-and-swap on version. Times are Unix microseconds (0 = unset).
-- abandoned is the list of abandoned attempts, "unit:id,unit:id" ('' for
-- none); has_abandoned is derived from it, for the reconciler's index.
CREATE TABLE IF NOT EXISTS directory_entries (
  mchid         VARCHAR(32)     NOT NULL,
  kind          VARCHAR(8)      NOT NULL,
  value         VARCHAR(64)     NOT NULL,
  bucket        INT             NOT NULL,
  state         VARCHAR(16)     NOT NULL,
  attempt_unit  INT             NOT NULL,
  attempt_id    BIGINT UNSIGNED NOT NULL,
  fingerprint   VARCHAR(64)     NOT NULL,
  record_no     VARCHAR(40)     NOT NULL DEFAULT '',
  abandoned     TEXT            NOT NULL,
  has_abandoned TINYINT         AS (abandoned <> '') PERSISTENT,
  created_us    BIGINT          NOT NULL,
  updated_us    BIGINT          NOT NULL,
  version       BIGINT          NOT NULL,
  PRIMARY KEY (mchid, kind, value),
  KEY directory_entries_bucket (bucket, mchid, kind, value),
  KEY directory_entries_abandoned (has_abandoned, mchid, kind, value),
  CONSTRAINT directory_entries_state CHECK (state IN ('pending', 'committed')),
  CONSTRAINT directory_entries_version CHECK (version >= 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
