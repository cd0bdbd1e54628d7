import { useEffect, useState } from "preact/hooks";

type Renderer = { render: (src: string) => string };
let renderer: Promise<Renderer> | null = null;

/** markdown-it with raw HTML disabled (it is escaped) and its link validation (no javascript: URLs). */
function load(): Promise<Renderer> {
  renderer ??= import("markdown-it").then(({ default: MarkdownIt }) => new MarkdownIt({ html: false, linkify: true, breaks: true }));
  return renderer;
}

export function Markdown({ source }: { source: string }) {
  const [html, setHtml] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    load().then((md) => live && setHtml(md.render(source)));
    return () => {
      live = false;
    };
  }, [source]);
  if (html === null) return <pre>{source}</pre>;
  return <div class="markdown" dangerouslySetInnerHTML={{ __html: html }} />;
}
