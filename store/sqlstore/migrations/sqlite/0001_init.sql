-- Orders, refunds, the order-event outbox and the per-unit sequence.
-- Times are Unix microseconds (0 = unset); amounts are in the smallest currency unit.
CREATE TABLE IF NOT EXISTS orders (
  order_no        TEXT    NOT NULL PRIMARY KEY,
  mchid           TEXT    NOT NULL,
  out_trade_no    TEXT    NOT NULL,
  description     TEXT    NOT NULL,
  total           INTEGER NOT NULL,
  currency        TEXT    NOT NULL,
  trade_state     TEXT    NOT NULL,
  payment_id      TEXT    NOT NULL DEFAULT '',
  refunded        INTEGER NOT NULL DEFAULT 0,
  abandoned_units TEXT    NOT NULL DEFAULT '',
  create_time     INTEGER NOT NULL,
  update_time     INTEGER NOT NULL,
  success_time    INTEGER NOT NULL DEFAULT 0,
  close_time      INTEGER NOT NULL DEFAULT 0,
  version         INTEGER NOT NULL DEFAULT 1,
  CHECK (refunded >= 0 AND refunded <= total)
);
CREATE UNIQUE INDEX IF NOT EXISTS orders_mchid_out_trade_no ON orders (mchid, out_trade_no);

CREATE TABLE IF NOT EXISTS refunds (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  mchid         TEXT    NOT NULL,
  out_refund_no TEXT    NOT NULL,
  order_no      TEXT    NOT NULL REFERENCES orders (order_no),
  amount        INTEGER NOT NULL,
  currency      TEXT    NOT NULL,
  reason        TEXT    NOT NULL DEFAULT '',
  status        TEXT    NOT NULL,
  create_time   INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS refunds_mchid_out_refund_no ON refunds (mchid, out_refund_no);
CREATE INDEX IF NOT EXISTS refunds_order_no ON refunds (order_no);

CREATE TABLE IF NOT EXISTS order_events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  order_no    TEXT    NOT NULL,
  event_type  TEXT    NOT NULL,
  payload     TEXT    NOT NULL,
  create_time INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS order_events_order_no ON order_events (order_no);

CREATE TABLE IF NOT EXISTS sequences (
  name       TEXT    NOT NULL PRIMARY KEY,
  next_value INTEGER NOT NULL
);
INSERT OR IGNORE INTO sequences (name, next_value) VALUES ('order', 1);
