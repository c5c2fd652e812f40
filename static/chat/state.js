// A broadcast room's state (a score, a quote: a small JSON value), shown as
// text: an object as its names and values, anything else as it reads. The
// newest version wins, whichever worker's broadcast comes first.

import { make } from "./dom.js";

function shown(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export class StateView {
  constructor(element) {
    this.element = element;
    this.version = element ? Number(element.dataset.version) || 0 : 0;
    if (element) this.render(JSON.parse(element.dataset.state || "null"));
  }

  update(state, version) {
    if (!this.element || Number(version) < this.version) return;
    this.version = Number(version);
    this.render(state);
  }

  render(state) {
    const element = this.element;
    element.replaceChildren();
    element.hidden = state === null || state === undefined;
    if (element.hidden) return;
    if (typeof state === "object" && !Array.isArray(state)) {
      const list = make("dl", "state-fields");
      for (const [name, value] of Object.entries(state)) {
        const field = make("div", "state-field");
        field.append(make("dt", "", name), make("dd", "", shown(value)));
        list.append(field);
      }
      element.append(list);
    } else {
      element.append(make("p", "state-value", shown(state)));
    }
  }
}
