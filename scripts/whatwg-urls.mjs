// Writes tests/fixtures/whatwg/urls.json: how the JS runtime's WHATWG URL parser (Node's, the
// same family as workerd's) parses each input below, its href and every component src/weburl.rs
// reads. The unit tests split each href with our Url type and compare. Run by hand when the
// list changes: node scripts/whatwg-urls.mjs
import { writeFileSync } from "node:fs";

const inputs = [
  "https://cdn.example/a.png",
  "HTTPS://User:Pa%20ss@CDN.Example:443/a/../b/./c?x=1&y=%41+b#frag?#",
  "http://cdn.example:8080/",
  "http://127.0.0.1:9797/_sim/images/ok.png",
  "http://0x7f.1/",
  "http://0177.0.0.1/",
  "http://2130706433/",
  "http://127.1/",
  "http://127.0.0.1./",
  "http://[::1]/a.png",
  "http://[::ffff:1.2.3.4]:81/",
  "https://tiktok.com@evil.example/x",
  "https://a:b@c@d.example/",
  "https://a%2F@evil.example/",
  "https://evil.example\\@good.example/",
  "https://good.example\\.evil.example/",
  "https://bücher.example/ok",
  "https://xn--bcher-kva.example/ok",
  "http://ｌｏｃａｌｈｏｓｔ/",
  "http://１２７.0.0.1/",
  "http://%6c%6fcalhost/",
  "http://localhost./a.png",
  "http://+1.+2.+3.+4/",
  "http://1.2.3.+4/",
  "http://foo.123/",
  "http://1.2.3.4.5.example/",
  "https://x/?",
  "https://x/#",
  "https://x?a#b?c",
  "https://x:443/",
  "https://x:0/",
  "wss://w.example:443/",
  "ws://w.example:80/",
  "ftp://f.example:21/x",
  "https://a.example/\tb\nc",
  " https://a.example/ ",
  "https:a.example/x",
  "https:\\\\a.example\\x",
  "file:///etc/passwd",
  "file://host/share",
  "mailto:a@b.example?subject=x",
  "data:text/plain,hi#x",
  "javascript:alert(1)",
  "blob:https://app.example/uuid",
  "blob:ftp://f.example/x",
  "blob:blob:https://app.example/",
  "foo://1.2.3.4:99/p?q",
  "foo://[::1]/",
  "foo:///x",
  "foo://",
  "web+demo:/.//not-a-host/",
  "web+demo://h/.//p",
  "https://www.tiktok.com/v2/auth/authorize/",
  "https://api.telegram.org/bot1:AA/sendMessage?chat_id=-100%2B1&x",
  "https://hooks.slack.com/services/T/B/x?y=%zz&z=é",
  "https://discord.com/api/webhooks/1/t?wait=true#f",
  "https://x.example/a%2fb/%2e%2e/c",
  "https://x.example/é?é#é",
  "/relative",
  "relative",
  "",
  "https://",
  "http://a b/",
  "https://x:65536/",
  "http://[::1/",
];

const rows = inputs.map((input) => {
  let u;
  try {
    u = new URL(input);
  } catch {
    return { input, error: true };
  }
  const { href, hostname, port, pathname, search, hash, origin } = u;
  return { input, href, hostname, port, pathname, search, hash, origin };
});
const out = new URL("../tests/fixtures/whatwg/urls.json", import.meta.url);
writeFileSync(out, JSON.stringify({ parser: `node ${process.version}`, rows }, null, 1) + "\n");
console.log(`wrote ${rows.length} rows to ${out.pathname}`);
