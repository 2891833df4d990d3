// /reports/ and /system/reports/: draws the report's charts (vendored Chart.js) from the
// json_script data, and when a sale completes (a `notifications:event` of the payment or
// voucher family) re-fetches the report's JSON and redraws charts, totals and tables.
// No inline script or style: the page's Content-Security-Policy forbids both.

const root = document.getElementById("report");
const initial = document.getElementById("report-data");
const SALE_EVENTS = new Set(["PaymentCompleted", "VoucherRedeemed"]);
const METHOD_COLOURS = {
  "M-Pesa": "#198754",
  Voucher: "#0d6efd",
  Cash: "#fd7e14",
  "Other (API)": "#6c757d",
};

function revenueSeries(table) {
  // Columns: key…, Sales, Revenue, Currency. One dataset per currency.
  const byCurrency = new Map();
  const labels = [];
  for (const row of table.rows) {
    const currency = row[row.length - 1];
    const label = row[0];
    if (!labels.includes(label)) labels.push(label);
    if (!byCurrency.has(currency)) byCurrency.set(currency, new Map());
    byCurrency.get(currency).set(label, Number(row[row.length - 2]));
  }
  const datasets = [...byCurrency].map(([currency, values]) => ({
    label: `${table.columns[table.columns.length - 2]} (${currency})`,
    data: labels.map((l) => values.get(l) || 0),
    backgroundColor: "rgba(13, 110, 253, 0.6)",
    borderColor: "#0d6efd",
  }));
  return { labels, datasets };
}

function methodSeries(table) {
  const rows = table.rows;
  return {
    labels: rows.map((r) => `${r[0]} (${r[r.length - 1]})`),
    datasets: [
      {
        label: table.columns[table.columns.length - 2], // "Revenue", in the page's language
        data: rows.map((r) => Number(r[r.length - 2])),
        backgroundColor: rows.map((r) => METHOD_COLOURS[r[0]] || "#6c757d"),
      },
    ],
  };
}

function fillTable(table, data) {
  const tbody = table.tBodies[0];
  const tfoot = table.tFoot;
  const numeric = (i, n) => i >= n - 3 && i < n - 1;
  const line = (cells) => {
    const tr = document.createElement("tr");
    cells.forEach((cell, i) => {
      const td = document.createElement("td");
      td.textContent = cell; // text only: names come from users
      if (numeric(i, cells.length)) td.className = "text-end";
      tr.append(td);
    });
    return tr;
  };
  if (data.rows.length) tbody.replaceChildren(...data.rows.map(line));
  else {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = data.columns.length;
    td.className = "text-body-secondary";
    td.textContent = "No sales in this range.";
    tr.append(td);
    tbody.replaceChildren(tr);
  }
  tfoot.replaceChildren(
    ...data.totals.map((cells) => {
      const tr = line(cells);
      tr.className = "fw-semibold";
      return tr;
    }),
  );
}

function render(report, charts) {
  const totals = report.totals;
  const join = (f, empty) => (totals.length ? totals.map(f).join(" · ") : empty);
  // Written by the server (config.money: the currency's decimals, thousands grouped).
  root.querySelector('[data-report="revenue"]').textContent = join(
    (t) => t.display || `${t.currency} ${t.revenue}`,
    "0.00",
  );
  root.querySelector('[data-report="sales"]').textContent = join((t) => String(t.sales), "0");
  root.querySelector('[data-report="new_customers"]').textContent = String(report.new_customers);
  for (const [name, table] of Object.entries(report.tables)) {
    const element = root.querySelector(`[data-report-table="${name}"]`);
    if (element) fillTable(element, table);
  }
  charts.day.data = revenueSeries(report.tables.day);
  charts.method.data = methodSeries(report.tables.method);
  charts.day.update();
  charts.method.update();
  root.dataset.revenue = join((t) => `${t.currency} ${t.revenue}`, "0.00");
  root.dataset.updates = String(Number(root.dataset.updates || 0) + 1);
}

function start() {
  if (!root || !initial || !window.Chart) return;
  const report = JSON.parse(initial.textContent);
  const common = { responsive: true, maintainAspectRatio: false, animation: false };
  const charts = {
    day: new window.Chart(document.getElementById("chart-day"), {
      type: "bar",
      data: revenueSeries(report.tables.day),
      options: { ...common, scales: { y: { beginAtZero: true } } },
    }),
    method: new window.Chart(document.getElementById("chart-method"), {
      type: "doughnut",
      data: methodSeries(report.tables.method),
      options: common,
    }),
  };
  root.dataset.revenue = (report.totals || []).map((t) => `${t.currency} ${t.revenue}`).join(" · ") || "0.00";
  root.dataset.chartReady = "1";

  let pending = null;
  const refresh = () => {
    pending = null;
    fetch(root.dataset.jsonUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((fresh) => render(fresh, charts))
      .catch((error) => console.warn("report refresh failed", error));
  };
  const soon = () => {
    if (!pending) pending = window.setTimeout(refresh, 300);
  };
  document.addEventListener("notifications:event", ({ detail }) => {
    if (detail && SALE_EVENTS.has(detail.event)) soon();
  });
  document.addEventListener("notifications:resync", soon);
}

start();
