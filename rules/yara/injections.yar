/*
 * mamori's YARA rules: JavaScript and HTML injected into pages, scripts and templates
 * (drive-by iframes, script loaders, decoders that write markup).
 *
 * Written for mamori and licensed with it, under the same licence as the rest of the
 * project's source code; no rule here is copied from another rule set.
 *
 * Every rule must keep zero matches on Debian's WordPress tree (/usr/share/wordpress),
 * its minified scripts included: core/scan's tests scan all of it.
 */

rule mamori_js_hidden_iframe : js injection
{
  meta:
    description = "an iframe to another origin that no visitor sees (0/1 pixel or hidden by style)"
    severity = "high"
  strings:
    $size = /<iframe[^>]{0,300}\b(width|height)\s*=\s*['"]?[01](px)?['"]?[\s>\/][^>]{0,300}\bsrc\s*=\s*['"]?(https?:)?\/\/[a-z0-9]/ nocase
    $size_after = /<iframe[^>]{0,300}\bsrc\s*=\s*['"]?(https?:)?\/\/[a-z0-9][^>]{0,300}\b(width|height)\s*=\s*['"]?[01](px)?['"]?[\s>\/]/ nocase
    $style = /<iframe[^>]{0,300}style\s*=\s*['"][^'"]{0,200}(visibility\s*:\s*hidden|display\s*:\s*none|(width|height)\s*:\s*[01]px)[^>]{0,300}\bsrc\s*=\s*['"]?(https?:)?\/\/[a-z0-9]/ nocase
    $style_after = /<iframe[^>]{0,300}\bsrc\s*=\s*['"]?(https?:)?\/\/[a-z0-9][^>]{0,300}style\s*=\s*['"][^'"]{0,200}(visibility\s*:\s*hidden|display\s*:\s*none|(width|height)\s*:\s*[01]px)/ nocase
  condition:
    any of them
}

rule mamori_js_write_unescape : js injection
{
  meta:
    description = "document.write of a decoded string: document.write(unescape('%3Cscript...'))"
    severity = "high"
  strings:
    $a = /document\s*\.\s*write(ln)?\s*\(\s*(unescape|atob|decodeURIComponent|String\.fromCharCode)\s*\(/ nocase
  condition:
    $a
}

rule mamori_js_eval_decoded : js obfuscation
{
  meta:
    description = "eval of a decoded string: eval(String.fromCharCode(...)), eval(atob(...)), eval(unescape(...))"
    severity = "high"
  strings:
    $a = /\beval\s*\(\s*(String\.fromCharCode|atob|unescape|decodeURIComponent|escape)\s*\(/ nocase
    $b = /\beval\s*\(\s*function\s*\(\s*p\s*,\s*a\s*,\s*c\s*,\s*k\s*,\s*e\s*,\s*[dr]\s*\)/
  condition:
    any of them
}

rule mamori_js_charcode_payload : js obfuscation
{
  meta:
    description = "a long String.fromCharCode(...) list: markup or code hidden as numbers"
    severity = "medium"
  strings:
    $a = /fromCharCode\s*\(\s*([0-9]{2,3}\s*,\s*){40}/
  condition:
    $a
}

rule mamori_js_script_from_ip : js injection
{
  meta:
    description = "a script loaded from a bare IP address"
    severity = "high"
  strings:
    $a = /<script[^>]{0,200}\bsrc\s*=\s*['"]?(https?:)?\/\/[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}[:\/'"]/ nocase
    $b = /\.src\s*=\s*['"](https?:)?\/\/[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}[:\/'"]/ nocase
  condition:
    any of them
}

rule mamori_js_decoded_script_loader : js injection
{
  meta:
    description = "a script element whose source URL is decoded at run time"
    severity = "high"
  strings:
    $a = /createElement\s*\(\s*['"]script['"]\s*\)[^\n]{0,300}\.src\s*=\s*(atob|unescape|decodeURIComponent|String\.fromCharCode)\s*\(/ nocase
  condition:
    $a
}

rule mamori_script_before_php : php injection
{
  meta:
    description = "a <script> tag injected in front of a PHP file's own opening tag"
    severity = "high"
  strings:
    $script = /^\s{0,16}<script[\s>]/ nocase
    $php = "<?php" nocase
  condition:
    $script at 0 and $php
}

rule mamori_php_trailing_script : php injection
{
  meta:
    description = "a script from a hard-coded outside URL appended after a PHP file's last ?>"
    severity = "high"
  strings:
    $php = "<?php" nocase
    $tail = /\?>\s{0,64}<script[^>]{0,200}\bsrc\s*=\s*['"]?(https?:)?\/\/[a-z0-9][^>]{0,300}>\s{0,16}<\/script>\s{0,64}$/ nocase
  condition:
    $php at 0 and $tail
}

rule mamori_js_obfuscator_loader : js obfuscation
{
  meta:
    description = "javascript-obfuscator output (_0x names by the hundred) that writes markup, loads a script or evals"
    severity = "medium"
  strings:
    $hexvar = /_0x[0-9a-f]{4,6}/
    $sink = /(createElement|document\s*\.\s*write|\beval\s*\(|\.src\s*=)/
  condition:
    #hexvar > 100 and $sink
}
