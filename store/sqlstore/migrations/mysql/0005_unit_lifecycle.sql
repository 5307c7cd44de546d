-- The storage's place in the unit's hot→warm→cold lifecycle: while frozen,
-- every write transaction of the Store is refused (see Store.Freeze), so a
-- copy of the data can be brought exactly up to date before the unit's
-- storage mapping moves to it. One row, per storage: Sync never copies it.
CREATE TABLE IF NOT EXISTS unit_lifecycle (
  id        INT    NOT NULL PRIMARY KEY,
  frozen    INT    NOT NULL DEFAULT 0,
  frozen_at BIGINT NOT NULL DEFAULT 0,
  CONSTRAINT unit_lifecycle_one_row CHECK (id = 1)
) ENGINE=InnoDB;
INSERT IGNORE INTO unit_lifecycle (id, frozen, frozen_at) VALUES (1, 0, 0);
-- sequences and superseded_attempts were created without a collation and
-- took the database's default: utf8mb4_bin for a database Open created, but
-- anything for one an operator made. Sync compares key ranges on two
-- storages and needs byte order on both (SQLite's TEXT is compared
-- bytewise), and the attempts' keys are case-sensitive like the orders'.
ALTER TABLE sequences CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
ALTER TABLE superseded_attempts CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
