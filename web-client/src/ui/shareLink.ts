/**
 * A link to pass on: a read-only field that selects itself on focus, and a copy
 * button with a fallback for browsers that refuse the Clipboard API. The waiting
 * room shares its join link with it, the watch view its watch link.
 */
import { h, setText } from "./dom";

export interface ShareLinkIds {
  /** `id` and `data-testid` of the field. */
  field: string;
  /** `data-testid` of the copy button. */
  copy: string;
  /** The field's accessible name. */
  label: string;
}

export class ShareLinkBox {
  readonly el: HTMLElement;
  private readonly link: HTMLInputElement;
  private readonly copyBtn: HTMLButtonElement;

  constructor(ids: ShareLinkIds) {
    this.link = h("input", {
      id: ids.field,
      "data-testid": ids.field,
      type: "text",
      readonly: true,
      "aria-label": ids.label,
      onfocus: () => this.link.select(),
    });
    this.copyBtn = h("button", { type: "button", class: "secondary", "data-testid": ids.copy, onclick: () => void this.copy() }, "Copy link");
    this.el = h("div", { class: "share" }, this.link, this.copyBtn);
  }

  set(url: string): void {
    if (this.link.value !== url) this.link.value = url;
  }

  private async copy(): Promise<void> {
    const url = this.link.value;
    let ok = false;
    try {
      await navigator.clipboard.writeText(url);
      ok = true;
    } catch {
      // Clipboard API refused (permissions, insecure origin): fall back to a selection copy.
      this.link.select();
      ok = document.execCommand("copy");
    }
    setText(this.copyBtn, ok ? "Copied!" : "Select & copy");
    setTimeout(() => setText(this.copyBtn, "Copy link"), 2000);
  }
}
