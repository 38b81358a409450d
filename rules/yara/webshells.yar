/*
 * mamori's YARA rules: PHP web shells and the obfuscations they hide behind.
 *
 * Written for mamori and licensed with it, under the same licence as the rest of the
 * project's source code; no rule here is copied from another rule set. Users who add
 * third-party rules (e.g. signature-base) load them with `--rules DIR` / the agent's
 * rule directories, under those rules' own licences.
 *
 * Each rule names one technique, so a match says what was seen. Every rule must keep
 * zero matches on Debian's WordPress tree (/usr/share/wordpress): core/scan's tests scan
 * all of it. Strings start with a literal (an "atom") so the scan stays fast; see
 * docs/scan.md.
 */

rule mamori_php_eval_decoded : php webshell
{
  meta:
    description = "eval/assert of a decoded string: eval(base64_decode(...)) and kin"
    severity = "high"
  strings:
    $a = /\b(eval|assert)\s*\(\s*(@\s*)?(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|strrev|rawurldecode|urldecode|hex2bin|convert_uudecode|pack)\s*\(/ nocase
    // The same with PHP comments between the names and the parentheses.
    $commented = /\b(eval|assert)(\s|\/\*[^*]{0,64}\*\/)*\((\s|@|\/\*[^*]{0,64}\*\/)*(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|strrev|hex2bin)(\s|\/\*[^*]{0,64}\*\/)*\(/ nocase
  condition:
    any of them
}

rule mamori_php_decoder_chain : php obfuscation
{
  meta:
    description = "nested decoders: gzinflate(base64_decode(...)), str_rot13(gzinflate(...)) ..."
    severity = "high"
  strings:
    $a = /\b(gzinflate|gzuncompress|gzdecode|str_rot13|strrev|convert_uudecode)\s*\(\s*(@\s*)?(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|strrev|convert_uudecode|hex2bin)\s*\(/ nocase
    $b = /\bbase64_decode\s*\(\s*(@\s*)?(base64_decode|gzinflate|gzuncompress|str_rot13|strrev|convert_uudecode)\s*\(/ nocase
  condition:
    any of them
}

rule mamori_php_preg_replace_eval : php webshell
{
  meta:
    description = "preg_replace with the /e modifier: the replacement runs as PHP"
    severity = "high"
  strings:
    $a = /\bpreg_replace\s*\(\s*['"][\/#~@|!%][^'"\n]{0,300}[\/#~@|!%][imsxuADSUXJ]{0,8}e[imsxuADSUXJ]{0,8}['"]\s*,/ nocase
  condition:
    $a
}

rule mamori_php_exec_request_input : php webshell
{
  meta:
    description = "code or command execution fed straight from the request ($_GET, $_POST, ...)"
    severity = "critical"
  strings:
    // The call, optional @ and wrapping calls (stripslashes(, base64_decode(, ...), then
    // a superglobal, also spelled ${'_POST'} or $GLOBALS['_POST']: eval($_POST['x']),
    // system(base64_decode($_GET['c'])).
    $call = /\b(eval|assert|system|passthru|shell_exec|exec|popen|proc_open|pcntl_exec|create_function|include|require|include_once|require_once)\s*\(?\s*(@\s*)?([a-z0-9_]{2,24}\s*\(\s*(@\s*)?){0,3}(\$_(GET|POST|REQUEST|COOKIE|FILES|SERVER\s*\[\s*['"]HTTP_)|\$\{\s*['"]_(GET|POST|REQUEST|COOKIE)['"]\s*\}|\$GLOBALS\s*\[\s*['"]_(GET|POST|REQUEST|COOKIE)['"]\s*\])/ nocase
    // `$_GET['c']` as a statement (not a docblock quoting a superglobal in backticks).
    $backtick = /(=|echo|print|\(|;)\s*`\s*\$_(GET|POST|REQUEST|COOKIE)\s*\[[^\]\n]{1,64}\]\s*`/
  condition:
    any of them
}

rule mamori_php_variable_function_superglobal : php webshell
{
  meta:
    description = "a function whose name comes from the request: $_GET['f']($_GET['x']), call_user_func($_POST[...])"
    severity = "critical"
  strings:
    $call = /\$_(GET|POST|REQUEST|COOKIE|SERVER)\s*\[[^\]\n]{1,64}\]\s*\(/
    $callback = /\b(call_user_func(_array)?|array_map|array_filter|array_walk|usort|uasort|uksort|register_shutdown_function|register_tick_function|forward_static_call(_array)?|iterator_apply)\s*\(\s*(@\s*)?\$_(GET|POST|REQUEST|COOKIE)/ nocase
  condition:
    any of them
}

rule mamori_php_create_function : php obfuscation
{
  meta:
    description = "create_function with an empty argument list or a decoded body (an eval in disguise)"
    severity = "high"
  strings:
    $empty = /\bcreate_function\s*\(\s*(''|"")\s*,/ nocase
    $decoded = /\bcreate_function\s*\([^;]{0,100}(base64_decode|gzinflate|str_rot13|\$_(GET|POST|REQUEST|COOKIE))/ nocase
  condition:
    any of them
}

rule mamori_php_hidden_function_name : php obfuscation
{
  meta:
    description = "the name of a dangerous function in hex or octal escapes (\"\\x65\\x76\\x61\\x6c\" is eval), reversed or rot13'd"
    severity = "high"
  strings:
    $x_eval = "\\x65\\x76\\x61\\x6c" nocase
    $x_assert = "\\x61\\x73\\x73\\x65\\x72\\x74" nocase
    $x_system = "\\x73\\x79\\x73\\x74\\x65\\x6d" nocase
    $x_base64 = "\\x62\\x61\\x73\\x65\\x36\\x34" nocase
    $x_gzinflate = "\\x67\\x7a\\x69\\x6e\\x66\\x6c" nocase
    $x_rot13 = "\\x73\\x74\\x72\\x5f\\x72\\x6f\\x74" nocase
    $x_create = "\\x63\\x72\\x65\\x61\\x74\\x65\\x5f\\x66" nocase
    $x_shell = "\\x73\\x68\\x65\\x6c\\x6c\\x5f\\x65\\x78\\x65\\x63" nocase
    $o_eval = "\\145\\166\\141\\154"
    $o_assert = "\\141\\163\\163\\145\\162\\164"
    $o_system = "\\163\\171\\163\\164\\145\\155"
    $o_base64 = "\\142\\141\\163\\145\\66\\64"
    // Reversed or rot13'd names handed to the function that undoes them.
    $rev = /\bstrrev\s*\(\s*['"](lave|tressa|metsys|urhtssap|cexe_llehs|edoced_46esab|etalfnizg|noitcnuf_etaerc)['"]/ nocase
    $rot = /\bstr_rot13\s*\(\s*['"](riny|nffreg|flfgrz|cnffgueh|furyy_rkrp|onfr64_qrpbqr|tmvasyngr|perngr_shapgvba)['"]/ nocase
  condition:
    any of them
}

rule mamori_php_chr_chain : php obfuscation
{
  meta:
    description = "a string built from a long chain of chr() calls"
    severity = "medium"
  strings:
    $a = /chr\s*\(\s*[0-9]{1,3}\s*\)(\s*\.\s*chr\s*\(\s*[0-9]{1,3}\s*\)){7}/ nocase
  condition:
    $a
}

rule mamori_php_long_encoded_payload : php obfuscation
{
  meta:
    description = "a long base64 or hex blob handed to a decoder (the payload of a packed shell)"
    severity = "high"
  strings:
    $b64 = /\b(base64_decode|gzinflate|gzuncompress|str_rot13|convert_uudecode)\s*\(\s*(@\s*)?['"][A-Za-z0-9+\/=\\\r\n]{512}/ nocase
    $hex = /\b(hex2bin\s*\(|pack\s*\(\s*['"]H\*['"]\s*,)\s*['"][0-9a-fA-F]{256}/ nocase
  condition:
    any of them
}

rule mamori_php_upload_as_named : php webshell
{
  meta:
    description = "an uploader that stores a file under the name the client chose"
    severity = "high"
  strings:
    $a = /\bmove_uploaded_file\s*\(\s*\$_FILES\s*\[[^\]\n]{1,64}\]\s*\[\s*['"]tmp_name['"]\s*\]\s*,\s*[^;\n]{0,80}\$_(FILES|GET|POST|REQUEST)/ nocase
  condition:
    $a
}

rule mamori_php_in_image : php webshell
{
  meta:
    description = "PHP code inside a GIF, JPEG or PNG file (an upload filter bypassed)"
    severity = "high"
  strings:
    $php = "<?php" nocase
    $short = "<?="
    $code = /(eval|assert|system|passthru|shell_exec|base64_decode)\s*\(|\$_(GET|POST|REQUEST|COOKIE)\s*\[/ nocase
  condition:
    (uint32(0) == 0x38464947 or uint16(0) == 0xD8FF or uint32(0) == 0x474E5089) and
    ($php or $short) and $code
}

rule mamori_php_shell_family : php webshell
{
  meta:
    description = "the marks of well-known web shell families and file managers"
    severity = "critical"
  strings:
    $a1 = "FilesMan" fullword
    $a2 = "c99shell" nocase
    $a3 = "r57shell" nocase
    $a4 = "b374k" nocase
    $a5 = "IndoXploit" nocase
    $a6 = "WSOsetcookie"
    $a7 = "wso_version"
    $a8 = "Sec-Info" fullword
    $a9 = "AnonymousFox" nocase
    $php = "<?"
  condition:
    $php and any of ($a*)
}
