// brokergraph's GraphiQL bootstrap. It is a file served from the gateway's own
// origin, never an inline <script>, so the page's Content-Security-Policy can say
// script-src 'self' and nothing else.
(function () {
  "use strict";

  var root = document.getElementById("graphiql");
  var keysConfigured = root.dataset.keysConfigured === "true";

  // A fresh key per page load, so the example order is new until the user resends
  // it on purpose. getRandomValues, not randomUUID: the latter exists only in secure
  // contexts, and an internal gateway is often plain http on a non-loopback name.
  function uuidV4() {
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map
      .call(b, function (x) {
        return (x + 0x100).toString(16).slice(1);
      })
      .join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  // Lines stay under ~56 columns: the editor is half of a laptop screen.
  var auth = keysConfigured
    ? [
        "# Authorization: this gateway needs an API key",
        "# (or a sign-in token, a JWT, where configured).",
        "# Put yours in the Headers editor (below) as",
        '#   { "Authorization": "Bearer <your key>" }',
        "# Headers are not saved in this browser. Placing",
        "# orders needs the scope `trade`.",
      ]
    : [
        "# Authorization: no gateway API keys are configured,",
        "# so the gateway serves loopback only and any caller",
        "# may trade. With keys, send them from the Headers",
        '# editor: { "Authorization": "Bearer <key>" }',
      ];

  var query = [
    "# brokergraph: GraphQL in front of your broker.",
    "# Run the dashboard with Ctrl-Enter (Cmd-Enter on a",
    "# Mac) or the \u25b6 button.",
    "#",
  ]
    .concat(auth)
    .concat([
      "#",
      "# Live updates over a WebSocket, no polling: see",
      "# OrderUpdates at the end.",
      "",
      "query Dashboard {",
      "  account {",
      "    accountNumber status currency",
      "    cash buyingPower equity asOf",
      "  }",
      "  positions(first: 20) {",
      "    nodes {",
      "      symbol quantity averagePrice marketValue",
      "      instrument { name tickSize lotSize }",
      "    }",
      "  }",
      "  orders(first: 20, filter: { status: ALL }) {",
      "    nodes {",
      "      id symbol side type quantity filledQuantity",
      "      limitPrice status createdAt",
      "      instrument { name }",
      "    }",
      "    pageInfo { hasNextPage endCursor }",
      "  }",
      "}",
      "",
      "# To place an order, uncomment the mutation below",
      "# (select it, then Ctrl-/), put in a symbol (from",
      "# `instruments(first: 10) { nodes { symbol } }`),",
      "# and pick SubmitOrder from the \u25b6 button.",
      "# The idempotencyKey is new for this page load:",
      "# sending the same mutation again replays the first",
      "# result (replayed: true), never a second order.",
      "# Reload the page for a new key.",
      "#",
      "# mutation SubmitOrder {",
      "#   submitOrder(input: {",
      '#     idempotencyKey: "' + uuidV4() + '"',
      '#     symbol: "SYMBOL", side: BUY, type: LIMIT',
      '#     quantity: "10", limitPrice: "100.00"',
      "#   }) {",
      "#     replayed",
      "#     order { id brokerOrderId status }",
      "#     userErrors { field code message }",
      "#   }",
      "# }",
      "",
      "# Live order updates: uncomment the subscription",
      "# below and pick OrderUpdates from the \u25b6 button;",
      "# each change to your orders arrives as it happens.",
      "#",
      "# subscription OrderUpdates {",
      "#   orderUpdates {",
      "#     event brokerEvent at resync cursor",
      "#     order { id symbol side status filledQuantity }",
      "#     fill { price quantity }",
      "#     positionQuantity",
      "#   }",
      "# }",
      "",
    ])
    .join("\n");

  // The second tab: trading beyond submitOrder. Every key is new for this page
  // load, one per operation.
  // trading-examples-start
  var trading = [
    "# Trading: replace an order, close a position,",
    "# cancel every open order, trade at the close.",
    "# Each needs a key with scope `trade`. Put in an",
    "# order `id` (from the Dashboard) or a symbol, then",
    "# pick the operation from the \u25b6 button. Sending",
    "# one again with its idempotencyKey answers the",
    "# first result, never a second action.",
    "",
    "mutation ReplaceOrder {",
    "  replaceOrder(input: {",
    '    orderId: "ORDER_ID"',
    '    idempotencyKey: "' + uuidV4() + '"',
    '    quantity: "5", limitPrice: "101.00"',
    "  }) {",
    "    replayed",
    "    order { id brokerOrderId status limitPrice }",
    "    replacedOrder { id status }",
    "    userErrors { field code message }",
    "  }",
    "}",
    "",
    "# The whole position, or `quantity` of it.",
    "mutation ClosePosition {",
    "  closePosition(input: {",
    '    symbol: "SYMBOL"',
    '    idempotencyKey: "' + uuidV4() + '"',
    "  }) {",
    "    replayed",
    "    order { id side quantity status }",
    "    userErrors { field code message }",
    "  }",
    "}",
    "",
    "# Add `symbol:` to cancel one symbol's only.",
    "mutation CancelAllOrders {",
    "  cancelAllOrders(input: {",
    '    idempotencyKey: "' + uuidV4() + '"',
    "  }) {",
    "    canceled { id symbol status }",
    "    notCanceled { id symbol status }",
    "    userErrors { field code message }",
    "  }",
    "}",
    "",
    "# CLS: only in the closing auction (OPG: the",
    "# opening one); what does not fill is canceled.",
    "mutation SellAtTheClose {",
    "  submitOrder(input: {",
    '    idempotencyKey: "' + uuidV4() + '"',
    '    symbol: "SYMBOL", side: SELL, type: MARKET',
    '    quantity: "10", timeInForce: CLS',
    "  }) {",
    "    order { id status timeInForce }",
    "    userErrors { field code message }",
    "  }",
    "}",
    "",
  ].join("\n");
  // trading-examples-end

  // Subscriptions go over graphql-transport-ws on the same path (GraphiQL bundles
  // the graphql-ws client); the Headers editor's Authorization travels in
  // connection_init. The URL is absolute because WebSocket needs one.
  var http = new URL(root.dataset.endpoint, window.location.href);
  var ws = new URL(http.href);
  ws.protocol = http.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({
    url: http.href,
    subscriptionUrl: ws.href,
  });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: query,
      defaultTabs: [{ query: query }, { query: trading }],
      // Keys stay out of localStorage: a shared or kiosk browser must not keep them.
      shouldPersistHeaders: false,
      defaultHeaders: keysConfigured
        ? '{\n  "Authorization": "Bearer <your gateway key>"\n}'
        : undefined,
      defaultEditorToolsVisibility: keysConfigured ? "headers" : false,
    }),
  );
})();
