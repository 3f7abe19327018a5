// Pieces several pages share.

import { h } from "../dom.js";

/** "Connected" / "Disconnected", following the live feed of the page. */
export function connectionBadge() {
  const text = h("span", "Connecting…");
  const el = h("span.conn", { testid: "connection-status", role: "status", "aria-live": "polite", class: "wait" }, text);
  return {
    el,
    set(connected) {
      el.className = `conn ${connected ? "on" : "off"}`;
      el.textContent = connected ? "Connected" : "Disconnected";
    },
  };
}

/** Tabs with the ARIA tabs pattern (arrow keys move between tabs). */
export function tabs(items, onChange) {
  const list = h("div.tabs", { role: "tablist" });
  const buttons = items.map(([id, text], index) => h("button.tab", {
    type: "button", role: "tab", id: `tab-${id}`, "aria-controls": `panel-${id}`,
    "aria-selected": index === 0 ? "true" : "false", tabindex: index === 0 ? "0" : "-1",
    onclick: () => select(index),
    onkeydown: (e) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
      if (step) select((index + step + items.length) % items.length, true);
    },
  }, text));
  function select(index, focus = false) {
    buttons.forEach((b, i) => {
      b.setAttribute("aria-selected", String(i === index));
      b.tabIndex = i === index ? 0 : -1;
    });
    if (focus) buttons[index].focus();
    onChange(items[index][0]);
  }
  list.append(...buttons);
  return list;
}
