-- The query store's tables. Times are Unix microseconds (NULL: unset).
-- Text sorts by bytes (COLLATE "C"), as on SQLite, so that keys order
-- the same on both storages whatever the database's locale.

-- orders: each order's newest snapshot (the event of the highest version).
CREATE TABLE orders (
    order_no     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    unit         BIGINT NOT NULL,
    mchid        TEXT COLLATE "C" NOT NULL,
    out_trade_no TEXT COLLATE "C" NOT NULL,
    description  TEXT COLLATE "C" NOT NULL,
    total        BIGINT NOT NULL,
    currency     TEXT COLLATE "C" NOT NULL,
    trade_state  TEXT COLLATE "C" NOT NULL,
    payment_id   TEXT COLLATE "C" NOT NULL,
    refunded     BIGINT NOT NULL,
    close_reason TEXT COLLATE "C" NOT NULL,
    create_time  BIGINT NOT NULL,
    update_time  BIGINT NOT NULL,
    success_time BIGINT,
    close_time   BIGINT,
    version      BIGINT NOT NULL
);
-- The listing's keyset, and the day's statistics and bill.
CREATE INDEX orders_mchid_create ON orders (mchid, create_time, order_no);
CREATE INDEX orders_mchid_success ON orders (mchid, success_time);
-- Reconciliation's totals over every merchant.
CREATE INDEX orders_create ON orders (create_time);
CREATE INDEX orders_success ON orders (success_time);

CREATE TABLE refunds (
    refund_id     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    mchid         TEXT COLLATE "C" NOT NULL,
    out_refund_no TEXT COLLATE "C" NOT NULL,
    order_no      TEXT COLLATE "C" NOT NULL,
    amount        BIGINT NOT NULL,
    currency      TEXT COLLATE "C" NOT NULL,
    reason        TEXT COLLATE "C" NOT NULL,
    create_time   BIGINT NOT NULL
);
CREATE INDEX refunds_mchid_create ON refunds (mchid, create_time);
CREATE INDEX refunds_create ON refunds (create_time);

-- watermarks: per unit, the highest outbox seq applied and the time of the
-- newest event applied.
CREATE TABLE watermarks (
    unit       BIGINT NOT NULL PRIMARY KEY,
    seq        BIGINT NOT NULL,
    event_time BIGINT NOT NULL
);

-- caught_up: one row, when the consumer last found the bus drained.
CREATE TABLE caught_up (
    id SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    marked_at BIGINT NOT NULL
);
