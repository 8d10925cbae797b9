/** Minimal DOM building helpers (no framework: the table must stay fast for thousands of rows). */

export type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  /** sets data-testid */
  testid?: string;
  title?: string;
  attrs?: Record<string, string | number | boolean | null | undefined>;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    if (props.class) el.className = props.class;
    if (props.testid) el.setAttribute('data-testid', props.testid);
    if (props.title) el.title = props.title;
    if (props.attrs) {
      for (const [k, v] of Object.entries(props.attrs)) {
        if (v === null || v === undefined || v === false) continue;
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** Read a theme colour (a --vscode-* variable) for canvas drawing. */
export function themeColor(variable: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(variable).trim();
  return v || fallback;
}

/**
 * Disable/enable a vscode-button. `aria-disabled` is mirrored because assistive tech (and test drivers)
 * only treat native controls' `disabled` as disabled, not a custom element's attribute.
 */
export function setDisabled(el: HTMLElement & { disabled: boolean }, disabled: boolean): void {
  el.disabled = disabled;
  if (disabled) el.setAttribute('aria-disabled', 'true');
  else el.removeAttribute('aria-disabled');
}
