// Draws a rendered Kaizala ChatCanvasCardView (RenderedCard.view) as HTML and CSS: exactly the vocabulary the
// service validates (src/domain/card/view.rs and parse.rs): `container` (layout, children, initialHeight),
// `text` (string, fontSize, fontStyle, textColor, textAlignment, maxNumberOfLines), `image` (url, source), and
// on every node backgroundColor, padding* and margin*. Keys and word values are matched ignoring letter case,
// as the service does, since renders keep the author's spelling. Strings always go in as text, never as HTML.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One JSON object's keys, looked up ignoring letter case. */
class Keys {
  private readonly map = new Map<string, Json>();

  constructor(object: { [key: string]: Json }) {
    for (const [key, value] of Object.entries(object)) {
      if (value !== null) this.map.set(key.toLowerCase(), value);
    }
  }

  get(name: string): Json | undefined {
    return this.map.get(name.toLowerCase());
  }

  number(name: string): number | undefined {
    const value = this.get(name);
    return typeof value === "number" && Number.isFinite(value) ? value : undefined;
  }

  string(name: string): string | undefined {
    const value = this.get(name);
    return typeof value === "string" ? value : undefined;
  }

  /** A word value, lower-cased. */
  word(name: string): string | undefined {
    return this.string(name)?.toLowerCase();
  }
}

/** A Kaizala colour (`#RGB`, `#RRGGBB`, `#AARRGGBB`, alpha first) as CSS, or undefined when it is none. */
export function cssColor(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const hex = value.trim();
  if (/^#[0-9a-f]{3}$/i.test(hex) || /^#[0-9a-f]{6}$/i.test(hex)) return hex.toLowerCase();
  if (/^#[0-9a-f]{8}$/i.test(hex)) {
    const alpha = parseInt(hex.slice(1, 3), 16) / 255;
    const [r, g, b] = [3, 5, 7].map((at) => parseInt(hex.slice(at, at + 2), 16));
    return `rgba(${r}, ${g}, ${b}, ${Number(alpha.toFixed(3))})`;
  }
  return undefined;
}

const FONT_STYLES: Record<string, [string, string]> = {
  regular: ["400", "normal"],
  bold: ["700", "normal"],
  italic: ["400", "italic"],
  bolditalic: ["700", "italic"],
};

const ALIGNMENTS = new Set(["left", "center", "right"]);

/** Kaizala's text size when a node names none, in CSS pixels. */
const DEFAULT_FONT_SIZE = 14;

/** An image address a page may load: web and inline images only. */
function imageAddress(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    const url = new URL(value, document.baseURI);
    if (url.protocol === "https:" || url.protocol === "http:") return url.href;
    if (url.protocol === "data:" && /^data:image\//i.test(value)) return value;
  } catch {
    // Not an address: a package-relative `source` the browser cannot resolve.
  }
  return undefined;
}

function px(value: number | undefined): string | undefined {
  return value === undefined ? undefined : `${value}px`;
}

/** Applies what every node may have: background colour, paddings and margins. */
function applyCommon(element: HTMLElement, keys: Keys): void {
  const background = cssColor(keys.string("backgroundColor"));
  if (background) element.style.backgroundColor = background;
  for (const side of ["Left", "Right", "Top", "Bottom"] as const) {
    const padding = px(keys.number(`padding${side}`));
    if (padding) element.style[`padding${side}`] = padding;
    const margin = px(keys.number(`margin${side}`));
    if (margin) element.style[`margin${side}`] = margin;
  }
}

function renderText(keys: Keys): HTMLElement {
  const element = document.createElement("div");
  element.className = "kz-text";
  element.textContent = keys.string("string") ?? "";
  element.style.fontSize = `${keys.number("fontSize") ?? DEFAULT_FONT_SIZE}px`;
  const [weight, style] = FONT_STYLES[keys.word("fontStyle") ?? "regular"] ?? FONT_STYLES.regular;
  element.style.fontWeight = weight;
  element.style.fontStyle = style;
  const color = cssColor(keys.string("textColor"));
  if (color) element.style.color = color;
  const alignment = keys.word("textAlignment");
  if (alignment && ALIGNMENTS.has(alignment)) element.style.textAlign = alignment;
  const lines = keys.number("maxNumberOfLines");
  // 0 (or absent) means no limit; more lines than allowed end in an ellipsis.
  if (lines !== undefined && lines > 0) {
    element.classList.add("kz-clamped");
    element.style.setProperty("-webkit-line-clamp", String(Math.floor(lines)));
  }
  return element;
}

function renderImage(keys: Keys): HTMLElement {
  const address = imageAddress(keys.string("url")) ?? imageAddress(keys.string("source"));
  if (!address) {
    // A package resource (`source: "Logo.png"`) lives in the Kaizala package, not on the web.
    const placeholder = document.createElement("div");
    placeholder.className = "kz-image kz-image-missing";
    placeholder.textContent = keys.string("source") ?? keys.string("url") ?? "";
    return placeholder;
  }
  const image = document.createElement("img");
  image.className = "kz-image";
  image.src = address;
  image.alt = "";
  image.referrerPolicy = "no-referrer";
  return image;
}

function renderContainer(keys: Keys, path: string): HTMLElement {
  const element = document.createElement("div");
  // Kaizala's default layout is vertical.
  const horizontal = keys.word("layout") === "horizontal";
  element.className = `kz-container ${horizontal ? "kz-horizontal" : "kz-vertical"}`;
  const height = px(keys.number("initialHeight"));
  if (height) element.style.minHeight = height;
  const children = keys.get("children");
  if (Array.isArray(children)) {
    children.forEach((child, index) => {
      element.append(renderNode(child, `${path}.children[${index}]`));
    });
  }
  return element;
}

/** One node and its subtree; `path` is the node's path as the service names it in errors. */
export function renderNode(node: Json, path = "schema"): HTMLElement {
  if (node === null || typeof node !== "object" || Array.isArray(node)) {
    const broken = document.createElement("div");
    broken.className = "kz-unknown";
    return broken;
  }
  const keys = new Keys(node);
  let element: HTMLElement;
  switch (keys.word("type")) {
    case "container":
      element = renderContainer(keys, path);
      break;
    case "text":
      element = renderText(keys);
      break;
    case "image":
      element = renderImage(keys);
      break;
    default:
      element = document.createElement("div");
      element.className = "kz-unknown";
  }
  applyCommon(element, keys);
  element.dataset.path = path;
  return element;
}

/** The whole view document (`{"schemaVersion": 2, "schema": {...}}`) as one element. */
export function renderView(viewJson: string): HTMLElement {
  const document_ = JSON.parse(viewJson) as Json;
  const root = document.createElement("div");
  root.className = "kz-card";
  if (document_ !== null && typeof document_ === "object" && !Array.isArray(document_)) {
    const schema = new Keys(document_).get("schema");
    if (schema !== undefined) root.append(renderNode(schema));
  }
  return root;
}
