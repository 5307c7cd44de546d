-- The merchant-key directory's attempts: the attempt that made each order,
-- the attempts superseded before they made one (a create carrying one is
-- refused), and why a closed order was closed.
ALTER TABLE orders ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN close_reason TEXT NOT NULL DEFAULT '';
CREATE TABLE IF NOT EXISTS superseded_attempts (
  mchid        TEXT    NOT NULL,
  out_trade_no TEXT    NOT NULL,
  attempt      INTEGER NOT NULL,
  create_time  INTEGER NOT NULL,
  PRIMARY KEY (mchid, out_trade_no, attempt)
);
