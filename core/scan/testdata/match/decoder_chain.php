<?php
$x = 'S0zOyVdQT1RPLFIEAA==';
$y = str_rot13(gzinflate(base64_decode($x)));
echo $y;
