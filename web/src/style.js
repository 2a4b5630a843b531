// @ts-check
// The chat panel's stylesheet, adopted into the widget's shadow root as a
// constructed stylesheet (no <style> element, so style-src is not needed).
// The skin colour arrives as the --otrdesk-accent custom property, set through
// the CSSOM on the host element.

export const CSS = `
.p{position:fixed;right:16px;bottom:80px;z-index:2147483000;display:flex;flex-direction:column;width:360px;max-width:calc(100vw - 32px);height:520px;max-height:calc(100vh - 112px);background:#fff;color:#1a1a1a;border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.3);font:16px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;overflow:hidden}
.p[hidden]{display:none}
.h{display:flex;align-items:center;gap:8px;padding:10px 12px;background:var(--otrdesk-accent,#1b5e9f);color:#fff}
.h h2{flex:1;margin:0;font-size:17px;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.h button{min-width:44px;min-height:44px;border:0;border-radius:8px;background:transparent;color:inherit;font:inherit;cursor:pointer}
button:focus-visible,textarea:focus-visible,.m:focus-visible,a:focus-visible{outline:3px solid #000;outline-offset:1px;box-shadow:0 0 0 5px #fff}
.s{margin:0;padding:8px 12px 8px 36px;font-size:14px;border-bottom:1px solid #ddd;position:relative}
.s::before{position:absolute;left:12px;top:8px;width:16px;text-align:center;font-weight:700}
.s[data-state=verified]{background:#e6f4ea;color:#0d5323}
.s[data-state=verified]::before{content:"\\2713"}
.s[data-state=unverified],.s[data-state=misconfigured]{background:#fff4e5;color:#7a3e00;font-weight:600}
.s[data-state=unverified]::before,.s[data-state=misconfigured]::before,.s[data-state=plaintext]::before{content:"!"}
.s[data-state=plaintext]{background:#fdecea;color:#8a1111;font-weight:600}
.s[data-state=pending]{background:#f3f3f3;color:#333}
.s[data-state=pending]::before{content:"\\2026"}
.c{padding:8px 12px;background:#fff4e5;border-bottom:1px solid #ddd}
.c[hidden]{display:none}
.c button{min-height:44px;padding:0 14px;border:2px solid #7a3e00;border-radius:8px;background:#fff;color:#7a3e00;font:inherit;font-size:15px;font-weight:600;cursor:pointer}
.q{margin:0;padding:4px 12px;min-height:1.4em;font-size:14px;color:#444}
.m{flex:1;margin:0;padding:8px 12px;overflow-y:auto}
.m ol{margin:0;padding:0;list-style:none}
.m li{margin:6px 0;max-width:85%;padding:6px 10px;border-radius:10px;white-space:pre-wrap;overflow-wrap:anywhere}
.m .me{margin-left:auto;background:var(--otrdesk-accent,#1b5e9f);color:#fff}
.m .them{background:#eee;color:#1a1a1a}
.m .note{max-width:none;padding:2px 0;color:#555;font-size:14px;text-align:center}
.m .who{display:block;font-size:12px;font-weight:600}
.m .greet{max-width:none;margin:4px 0 10px;padding:6px 10px;border-left:4px solid #888;border-radius:0;background:#f7f7f7;color:#333}
.m .greet q{quotes:"\\201C" "\\201D"}
.m .mark{display:block;font-size:12px;font-weight:600;color:#8a1111}
/* not sent (yet): an outlined bubble instead of a filled one, at full contrast (a faded one is hard to read) */
.m .me[data-state=held],.m .me[data-state=sending],.m .me[data-state=dropped]{background:#fff;color:#1a1a1a;border:2px dashed var(--otrdesk-accent,#1b5e9f)}
.m .st{display:block;font-size:12px;font-style:italic}
.m .me[data-state=dropped]{text-decoration:line-through}
.f{display:flex;gap:8px;padding:8px 12px;border-top:1px solid #ddd}
.f textarea{flex:1;box-sizing:border-box;height:44px;min-height:44px;max-height:120px;padding:10px 8px;line-height:1.4;overflow-y:hidden;border:1px solid #888;border-radius:8px;font:inherit;font-size:16px;resize:none}
.f button,.a button{min-height:44px;padding:0 14px;border:0;border-radius:8px;background:var(--otrdesk-accent,#1b5e9f);color:#fff;font:inherit;font-size:16px;cursor:pointer}
.f button:disabled,.f textarea:disabled{opacity:.5;cursor:not-allowed}
.a{display:flex;gap:8px;flex-wrap:wrap;padding:0 12px 10px}
.a button{background:#fff;color:#1a1a1a;border:1px solid #888;font-size:14px;min-height:40px}
.e{margin:0;padding:8px 12px;background:#fdecea;color:#8a1111;font-size:14px}
.e[hidden]{display:none}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
/* a phone, or a window zoomed in (200 % of 1280x768 is 640x384): the whole screen */
@media (max-width:480px),(max-height:480px){.p{right:0;bottom:0;width:100vw;max-width:100vw;height:100%;max-height:100%;border-radius:0}}
@media (prefers-reduced-motion:no-preference){.p{transition:opacity .15s}}
`;
