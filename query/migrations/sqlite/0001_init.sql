-- The query store's tables. Times are Unix microseconds (NULL: unset).

-- orders: each order's newest snapshot (the event of the highest version).
CREATE TABLE orders (
    order_no     TEXT    NOT NULL PRIMARY KEY,
    unit         INTEGER NOT NULL,
    mchid        TEXT    NOT NULL,
    out_trade_no TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    total        INTEGER NOT NULL,
    currency     TEXT    NOT NULL,
    trade_state  TEXT    NOT NULL,
    payment_id   TEXT    NOT NULL,
    refunded     INTEGER NOT NULL,
    close_reason TEXT    NOT NULL,
    create_time  INTEGER NOT NULL,
    update_time  INTEGER NOT NULL,
    success_time INTEGER,
    close_time   INTEGER,
    version      INTEGER NOT NULL
);
-- The listing's keyset, and the day's statistics and bill.
CREATE INDEX orders_mchid_create ON orders (mchid, create_time, order_no);
CREATE INDEX orders_mchid_success ON orders (mchid, success_time);
-- Reconciliation's totals over every merchant.
CREATE INDEX orders_create ON orders (create_time);
CREATE INDEX orders_success ON orders (success_time);

CREATE TABLE refunds (
    refund_id     TEXT    NOT NULL PRIMARY KEY,
    mchid         TEXT    NOT NULL,
    out_refund_no TEXT    NOT NULL,
    order_no      TEXT    NOT NULL,
    amount        INTEGER NOT NULL,
    currency      TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    create_time   INTEGER NOT NULL
);
CREATE INDEX refunds_mchid_create ON refunds (mchid, create_time);
CREATE INDEX refunds_create ON refunds (create_time);

-- watermarks: per unit, the highest outbox seq applied and the time of the
-- newest event applied.
CREATE TABLE watermarks (
    unit       INTEGER NOT NULL PRIMARY KEY,
    seq        INTEGER NOT NULL,
    event_time INTEGER NOT NULL
);

-- caught_up: one row, when the consumer last found the bus drained.
CREATE TABLE caught_up (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    marked_at INTEGER NOT NULL
);
