-- The storage's place in the unit's hot→warm→cold lifecycle: while frozen,
-- every write transaction of the Store is refused (see Store.Freeze), so a
-- copy of the data can be brought exactly up to date before the unit's
-- storage mapping moves to it. One row, per storage: Sync never copies it.
CREATE TABLE IF NOT EXISTS unit_lifecycle (
  id        INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  frozen    INTEGER NOT NULL DEFAULT 0,
  frozen_at INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO unit_lifecycle (id, frozen, frozen_at) VALUES (1, 0, 0);
