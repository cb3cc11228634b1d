// streamcache dashboard: live orders over SSE (/realtime/orders), counters, a cache lookup
// (Upstash-style GET /redis/get/KEY) and an order form (REST Proxy POST /kafka/topics/orders).
// Plain JavaScript, no build step, nothing loaded from elsewhere. All data goes into the page
// through textContent, never as HTML.
'use strict';

const FEED_ROWS_MAX = 200;
const RATE_WINDOW_MS = 60_000;

const $ = (id) => document.getElementById(id);
const state = {
  live: false, // false while the server replays its backlog; its `live` event ends it
  orders: new Map(), // orderNumber -> { status, total }
  arrivals: [], // Date.now() of each new order, for orders per minute
  revenue: 0,
  statuses: new Map(), // status -> count
};
const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

// ---- order shape: tolerant of the field names the pipeline may produce, and of MongoDB
// Extended JSON wrappers ({"$numberInt": "7"}, {"$oid": "…"}) on values
function plain(v) {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const k of ['$numberInt', '$numberLong', '$numberDouble', '$numberDecimal']) if (k in v) return Number(v[k]);
    if ('$oid' in v) return String(v.$oid);
    if ('$date' in v) return plain(v.$date);
  }
  return v;
}
function orderLines(o) {
  for (const v of Object.values(o || {})) {
    if (Array.isArray(v) && v.some((l) => l && typeof l === 'object' && 'quantityOrdered' in l)) return v;
  }
  return [];
}
function orderTotal(o) {
  for (const k of ['total', 'amount', 'orderTotal']) if (typeof plain(o[k]) === 'number') return plain(o[k]);
  return orderLines(o).reduce((s, l) => s + (Number(plain(l.quantityOrdered)) || 0) * (Number(plain(l.priceEach)) || 0), 0);
}
function customerOf(o) {
  const c = (o.customer && typeof o.customer === 'object') ? o.customer : o;
  const num = plain(c.customerNumber ?? o.customerNumber ?? '');
  const name = c.customerName ?? o.customerName ?? '';
  return name ? `${name} (#${num})` : `#${num}`;
}
const orderKey = (o) => String(plain(o.orderNumber ?? o._id) ?? JSON.stringify(o));

// ---- counters
function bump(map, key, by) {
  const n = (map.get(key) || 0) + by;
  if (n <= 0) map.delete(key); else map.set(key, n);
}
function renderCounters() {
  const now = Date.now();
  while (state.arrivals.length && now - state.arrivals[0] > RATE_WINDOW_MS) state.arrivals.shift();
  $('rate').textContent = String(state.arrivals.length);
  $('count').textContent = String(state.orders.size);
  $('revenue').textContent = money.format(state.revenue);
  const ul = $('statuses');
  ul.replaceChildren();
  const entries = [...state.statuses.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (!entries.length) { const li = document.createElement('li'); li.className = 'muted'; li.textContent = 'none yet'; ul.append(li); }
  for (const [status, n] of entries) {
    const li = document.createElement('li');
    li.textContent = `${status}: ${n}`;
    li.dataset.status = status;
    ul.append(li);
  }
}
setInterval(renderCounters, 1000);

// ---- feed
function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function onOrder(order, eventId) {
  if (!order || typeof order !== 'object') return;
  const key = orderKey(order);
  const status = String(order.status ?? 'unknown');
  const total = orderTotal(order);
  const seen = state.orders.get(key);
  if (seen) { // an update of a known order: adjust, do not count twice
    bump(state.statuses, seen.status, -1);
    state.revenue -= seen.total;
  } else if (state.live) {
    state.arrivals.push(Date.now());
  }
  state.orders.set(key, { status, total });
  bump(state.statuses, status, 1);
  state.revenue += total;

  const tbody = $('feed');
  tbody.querySelector('tr.empty')?.remove();
  const old = tbody.querySelector(`tr[data-order="${CSS.escape(key)}"]`);
  old?.remove();
  const tr = document.createElement('tr');
  tr.dataset.order = key;
  tr.dataset.eventId = String(eventId ?? '');
  tr.className = 'fresh';
  tr.append(
    cell(key), cell(customerOf(order)), cell(status),
    cell(String(orderLines(order).length)), cell(money.format(total), 'num'),
    cell(new Date().toLocaleTimeString()),
  );
  tbody.prepend(tr);
  while (tbody.rows.length > FEED_ROWS_MAX) tbody.lastElementChild.remove();
  renderCounters();
}

// ---- connection
function setConn(kind, text) {
  $('conn').className = `conn ${kind}`;
  $('conn-text').textContent = text;
  document.body.dataset.conn = kind;
}
function notice(text) {
  const n = $('notice');
  n.textContent = text;
  n.hidden = !text;
}
// A server started with an auth token answers 401 once the sign-in session is gone (signed
// out, or the token changed): go back to the sign-in page.
function signedOut(res) {
  if (res.status === 401) { location.assign('/login'); return true; }
  return false;
}
function connect() {
  setConn('connecting', 'connecting');
  // ?recent= fills the feed with the latest buffered orders; reconnects resume by Last-Event-ID.
  const es = new EventSource('/realtime/orders?recent=50');
  es.onopen = () => {
    // The server replays its backlog (?recent= / Last-Event-ID) first and then sends `live`;
    // the backlog counts towards totals but not towards orders per minute.
    state.live = false;
    document.body.dataset.replay = 'pending';
    setConn('live', 'live');
  };
  es.addEventListener('live', () => {
    state.live = true;
    document.body.dataset.replay = 'done';
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      setConn('offline', 'offline — retrying');
      fetch('/readyz').then(signedOut).catch(() => {});
      setTimeout(connect, 5000);
    } else {
      setConn('connecting', 'reconnecting');
    }
  };
  es.addEventListener('NewOrder', (e) => {
    $('last-id').textContent = `#${e.lastEventId}`;
    try { onOrder(JSON.parse(e.data), e.lastEventId); } catch (err) { console.warn('bad NewOrder payload', err); }
  });
  es.addEventListener('resync', (e) => {
    $('last-id').textContent = `#${e.lastEventId}`;
    notice('Some events were missed while disconnected (the server no longer buffers them); counters cover what this page has seen.');
  });
}
connect();

// ---- customer lookup (cache)
$('lookup').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const out = $('lookup-out');
  const n = $('lookup-n').value.trim();
  out.className = 'out';
  out.textContent = 'Looking up…';
  try {
    const res = await fetch(`/redis/get/${encodeURIComponent(`customer:${n}`)}`);
    if (signedOut(res)) return;
    const body = await res.json().catch(() => ({}));
    if (!res.ok || body.error) throw new Error(body.error || `HTTP ${res.status}`);
    if (body.result === null || body.result === undefined) { out.textContent = `customer:${n} is not in the cache`; return; }
    let value = body.result;
    try { value = JSON.stringify(JSON.parse(value), null, 2); } catch { /* plain string */ }
    out.textContent = value;
  } catch (err) {
    out.className = 'out error';
    out.textContent = `Lookup failed: ${err.message}`;
  }
});

// ---- create an order (REST Proxy produce)
const form = $('create');
form.elements.orderNumber.value = String(20000 + Math.floor(Math.random() * 70000));
form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = form.elements;
  const out = $('create-out');
  const today = new Date().toISOString().slice(0, 10);
  const required = new Date(Date.now() + 7 * 86400000).toISOString().slice(0, 10);
  const order = {
    orderNumber: Number(f.orderNumber.value),
    orderDate: today,
    requiredDate: required,
    shippedDate: null,
    status: f.status.value,
    comments: 'created from the dashboard',
    customerNumber: Number(f.customerNumber.value),
    customerName: f.customerName.value,
    orderLines: [{
      productCode: f.productCode.value,
      productName: f.productName.value,
      quantityOrdered: Number(f.quantityOrdered.value),
      priceEach: Number(f.priceEach.value),
    }],
  };
  out.className = 'out';
  out.textContent = 'Producing…';
  try {
    const res = await fetch('/kafka/topics/orders', {
      method: 'POST',
      headers: { 'Content-Type': 'application/vnd.kafka.json.v2+json', Accept: 'application/vnd.kafka.v2+json' },
      body: JSON.stringify({ records: [{ key: String(order.customerNumber), value: order }] }),
    });
    if (signedOut(res)) return;
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.message || body.error || `HTTP ${res.status}`);
    out.textContent = `Produced order ${order.orderNumber}: ${JSON.stringify(body.offsets ?? body)}`;
    f.orderNumber.value = String(order.orderNumber + 1);
  } catch (err) {
    out.className = 'out error';
    out.textContent = `Produce failed: ${err.message}`;
  }
});
